"""The embedded PostgreSQL + PostGIS cluster that yizhan runs when no ``DATABASE_URL`` is set.

Layout inside ``<data_dir>/pg``: ``data/`` (the cluster), ``run/`` (unix socket), ``postgres.log`` and
``port``. As root the server runs as the ``postgres`` user (``initdb``/``pg_ctl`` refuse root), so that
folder is owned by ``postgres``. The server listens on 127.0.0.1 only, with trust authentication.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from yizhan.errors import SetupError

DATABASE = "yizhan"
SUPERUSER = "postgres"
BULK_LOAD_OPTIONS = "-c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=4GB"
"""Server settings for bulk loads: a table created and filled in one transaction (a demand import's points) is
written without WAL and synced at commit (10 M points: 9.4 s instead of 15.4 s), and checkpoints come less often
during a large load. Durability is kept; what is given up is streaming replication and WAL archiving from the
embedded cluster (``pg_dump`` backs it up)."""


@dataclass(frozen=True)
class PgBinaries:
    """Where the PostgreSQL server binaries of one major version are."""

    bindir: Path
    version: int

    def __getitem__(self, name: str) -> str:
        return str(self.bindir / name)


def _postgis_installed(version: int) -> bool:
    return Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists()


def find_binaries() -> PgBinaries:
    """Find ``initdb``/``pg_ctl`` of the newest PostgreSQL that has PostGIS.

    Raises
    ------
    SetupError
        When no server binaries or no PostGIS are installed; the message names the Debian package.
    """
    candidates: list[PgBinaries] = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        with contextlib.suppress(ValueError):
            candidates.append(PgBinaries(initdb.parent, int(initdb.parent.parent.name)))
    on_path = shutil.which("pg_config")
    if on_path:
        out = subprocess.run([on_path, "--bindir", "--version"], capture_output=True, text=True).stdout.split("\n")
        m = re.search(r"(\d+)", out[1] if len(out) > 1 else "")
        if m and Path(out[0], "initdb").exists():
            candidates.append(PgBinaries(Path(out[0]), int(m.group(1))))
    if not candidates:
        raise SetupError(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with "
            "`apt-get install postgresql-15-postgis-3` (Debian 12) or set DATABASE_URL to a PostGIS server."
        )
    candidates.sort(key=lambda b: b.version, reverse=True)
    for b in candidates:
        if _postgis_installed(b.version):
            return b
    v = candidates[0].version
    raise SetupError(
        f"PostgreSQL {v} is installed but PostGIS is not. Install it with `apt-get install postgresql-{v}-postgis-3`."
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port``. SO_REUSEADDR as PostgreSQL binds: connections a restart has just
    cut linger in TIME-WAIT on the port and must not make it look taken (the server would move)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Cluster:
    """A local PostgreSQL cluster in ``<data_dir>/pg``, started on first need and reused afterwards.

    Parameters
    ----------
    data_dir
        yizhan's data folder; the cluster lives in its ``pg`` subfolder.
    port
        TCP port on 127.0.0.1; default: the one used last time if still free, else a free one.
    durable
        ``False`` turns fsync off (for throw-away test clusters only).
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True) -> None:
        self.root = Path(data_dir).absolute() / "pg"
        self.data = self.root / "data"
        self.run_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self.port_file = self.root / "port"
        self._port = port
        self.durable = durable
        self._as_postgres = os.geteuid() == 0

    # -- helpers -----------------------------------------------------------------------------------------
    def _cmd(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", SUPERUSER, "--", *args] if self._as_postgres else args

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._cmd(args), capture_output=True, text=True)
        if check and proc.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise SetupError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}")
        return proc

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        if self._as_postgres:
            pw = pwd.getpwnam(SUPERUSER)
            for p in [self.root, self.run_dir, *([self.data] if self.data.exists() else [])]:
                os.chown(p, pw.pw_uid, pw.pw_gid)
            # the postgres user must be able to reach the folder through every parent
            for parent in self.root.parents:
                if parent.exists() and not os.stat(parent).st_mode & 0o001:
                    raise SetupError(
                        f"The postgres user cannot enter {parent} (mode {oct(os.stat(parent).st_mode & 0o777)}); "
                        "set YIZHAN_DATA_DIR to a folder outside it, e.g. /var/lib/yizhan."
                    )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root.parent / ".pg.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- state -------------------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    @property
    def port(self) -> int:
        """The port the cluster listens (or will listen) on."""
        if self._port is None and self.port_file.exists():
            self._port = int(self.port_file.read_text().strip())
        if self._port is None:
            self._port = free_port()
        return self._port

    def running(self) -> bool:
        """Whether the server of this data folder is up and accepting connections."""
        if not self.initialised or not self.port_file.exists():
            return False
        proc = subprocess.run(
            [str(find_binaries().bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            capture_output=True,
        )
        return proc.returncode == 0

    def url(self, database: str = DATABASE) -> str:
        """SQLAlchemy URL of a database in this cluster (psycopg 3 driver)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle ---------------------------------------------------------------------------------------
    def up(self) -> str:
        """Initialise (first time) and start the cluster; create the ``yizhan`` database. Returns its URL."""
        with self._lock():
            bins = find_binaries()
            self._prepare_dirs()
            if not self.initialised:
                self._run([bins["initdb"], "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                           "-E", "UTF8", "--locale=C.UTF-8"])
            if not self.running():
                pg_ctl_status = self._run([bins["pg_ctl"], "status", "-D", str(self.data)], check=False)
                if pg_ctl_status.returncode == 0:  # running on another port than recorded: stop it first
                    self._run([bins["pg_ctl"], "stop", "-D", str(self.data), "-m", "fast", "-w"])
                port = self.port if _port_free(self.port) else free_port()
                self._port = port
                opts = (f"-p {port} -k {self.run_dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                        f"{BULK_LOAD_OPTIONS}"
                        + ("" if self.durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"))
                self._run([bins["pg_ctl"], "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                           "-o", opts])
                self.port_file.write_text(str(port))
            self._create_database(DATABASE)
        return self.url()

    def _create_database(self, name: str) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                                       autocommit=True)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')

    def down(self) -> bool:
        """Stop the server if it runs. Returns whether it was running."""
        if not self.initialised:
            return False
        bins = find_binaries()
        proc = self._run([bins["pg_ctl"], "status", "-D", str(self.data)], check=False)
        if proc.returncode != 0:
            return False
        self._run([bins["pg_ctl"], "stop", "-D", str(self.data), "-m", "fast", "-w"])
        return True

    def status(self) -> dict[str, object]:
        """A small report: data folder, whether it runs, port, URL, server version."""
        return {
            "data_dir": str(self.data),
            "initialised": self.initialised,
            "running": self.running(),
            "port": self.port if self.port_file.exists() else None,
            "url": self.url() if self.port_file.exists() else None,
            "log": str(self.log),
        }
