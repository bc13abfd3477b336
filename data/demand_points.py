"""An area's stored demand points: one partition of ``demand_point_blocks`` per area, the points kept as blocks of
column bytes (migration 0017), written whole by binary COPY and read back whole (or a box of them) as arrays.

A point is numbers: ``lon``, ``lat`` (WGS 84 degrees), ``x``, ``y`` (metres in the area's metric CRS, east and
north), ``weight`` (orders), the order's instant (microseconds since 2000-01-01 UTC, or none) and its number in the
area (from 1, in the order of the file; an appended file continues the numbers). The points are stored in blocks of
up to ``BLOCK_POINTS``, one row per block: the number of its first point (``first_id``; the others follow), its
count ``n``, its total weight, its box in metres (``west``, ``south``, ``east``, ``north``) and one ``bytea`` per
column holding the values' 8-byte big-endian forms (PostgreSQL's own binary forms: ``float8send``,
``timestamptz_send``). A block's ``micros`` is NULL when none of its points has a time; a point without one holds
``-infinity`` (the smallest 64-bit number). Every reader takes an area's points whole (a coverage run, hours,
capacity, site recommendation) or a part's box of them, which skips the blocks whose box lies outside (blocks are
cut in the order of the file, so the blocks of a file in no order of place each span the area and a box reads them
all): ten million points are some 160–190 rows (an import's batches each end a block), stored in a second or two and
read back in about as long, where a row per point took the server 5–8 s to store and 10 s to read. A point's cell is
its square of the layer's cell size, ``floor(x / size)``, ``floor(y / size)``, computed from the stored metres by
the import and by the readers alike.

``demand_point_blocks`` is partitioned by list of ``area_id``, one partition ``demand_point_blocks_a{id}`` per area,
made on the area's first import. Replacing an area's points (``replace_points``) loads a new table created in the
import's own transaction (``COPY ... FREEZE``: rows written frozen, and with ``wal_level=minimal`` written without
WAL), then, still in that transaction, drops the old partition and attaches the new one: readers see the old points
or the new ones, and a failed import leaves the stored points as they were. The swap takes the lock that every read
waits for only at its end, for the moment of the swap and the commit. Imports of one area wait for each other (an
advisory lock per area, for the transaction).

No foreign key ties the blocks to ``areas``: a partition is only made for an area the import has just found, and
deleting an area drops its partition (a trigger, migrations 0014 and 0017).

Blocks are encoded in numpy and sent through a queued writer, so the server takes one block while the next is
made; a read fetches the blocks' bytes in one query (one snapshot) and decodes each column with numpy.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
from psycopg import Connection as PgConnection
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, text

from yizhan.areas import AreaInfo
from yizhan.arrays import concat_ranges, lattice_code, lattice_squares
from yizhan.data.demand_times import zone_of
from yizhan.db.binary_copy import HEADER as COPY_HEADER
from yizhan.db.binary_copy import TRAILER as COPY_TRAILER
from yizhan.db.engine import driver_of

PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00:00Z in microseconds since 1970: PostgreSQL's binary timestamps count from it."""
BLOCK_POINTS = 65_536
"""Most points in a stored block (each column's bytes 512 kB)."""
MAX_POINTS = 2**31 - 1
"""Most points an area may hold: their numbers are 32-bit. What a command-line import allows; uploads are bounded by
``YIZHAN_MAX_IMPORT_ROWS``."""
LOCK_CLASS = 17_017
"""The first key of the advisory lock an import of an area's points takes (the second is the area's id)."""
TABLE = "demand_point_blocks"
"""The table of the areas' point blocks, partitioned by area."""
BYTE_COLUMNS = ("lon", "lat", "x", "y", "weight", "micros")
"""A block's columns of point values, each the values' 8-byte big-endian forms."""
COLUMN_TYPES = ("area_id integer NOT NULL, first_id integer NOT NULL, n integer NOT NULL, "
                "weight_sum double precision NOT NULL, west double precision NOT NULL, "
                "south double precision NOT NULL, east double precision NOT NULL, north double precision NOT NULL, "
                "lon bytea NOT NULL, lat bytea NOT NULL, x bytea NOT NULL, y bytea NOT NULL, weight bytea NOT NULL, "
                "micros bytea")
"""The columns of ``demand_point_blocks`` with their types, in the order a COPY sends them, as migration 0017 made
it (a partition must match them)."""
_HEAD = struct.Struct(">h" + "ii" * 3 + "id" * 5)
"""A block's row up to its bytes: the number of fields, then each number after its length word."""
_FIELDS = 8 + len(BYTE_COLUMNS)
NO_TIME = np.iinfo(np.int64).min
"""``-infinity`` as a binary timestamp: how a block marks a point without a time."""


@dataclass
class PointBlock:
    """Points to store: ``lon``, ``lat`` WGS 84 degrees, ``x``, ``y`` metres in the area's metric CRS (east, north),
    ``weight`` orders, ``micros`` the order's instant in microseconds since 2000-01-01 UTC where ``has_time``."""

    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    micros: np.ndarray
    has_time: np.ndarray

    def __len__(self) -> int:
        return len(self.lon)

    def part(self, start: int, stop: int) -> PointBlock:
        """The points from ``start`` to ``stop`` (views, not copies)."""
        if start == 0 and stop >= len(self):
            return self
        return PointBlock(*(getattr(self, f)[start:stop] for f in ("lon", "lat", "x", "y", "weight", "micros",
                                                                    "has_time")))


def partition_name(area_id: int) -> str:
    """The partition of ``demand_point_blocks`` holding area ``area_id``'s points."""
    return f"{TABLE}_a{int(area_id)}"


def _column(values: np.ndarray, kind: str) -> bytes:
    data = np.ascontiguousarray(values, dtype=kind).tobytes()
    return struct.pack(">i", len(data)) + data


def encode_block(area_id: int, first_id: int, block: PointBlock) -> bytes:
    """One stored block's row (at most ``BLOCK_POINTS`` points, numbered from ``first_id``) in PostgreSQL's binary
    COPY format, without the file's header and trailer."""
    n = len(block)
    x, y = np.asarray(block.x, np.float64), np.asarray(block.y, np.float64)
    weight = np.asarray(block.weight, np.float64)
    head = _HEAD.pack(_FIELDS, 4, area_id, 4, first_id, 4, n, 8, float(weight.sum()), 8, float(x.min()),
                      8, float(y.min()), 8, float(x.max()), 8, float(y.max()))
    has = np.asarray(block.has_time, dtype=bool)
    micros = (_column(np.where(has, block.micros, NO_TIME), ">i8") if has.any()
              else struct.pack(">i", -1))
    return b"".join([head, *(_column(a, ">f8") for a in (block.lon, block.lat, x, y, weight)), micros])


def _lock(cur: psycopg.Cursor[Any], area_id: int) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, int(area_id)))


def _stored_parts(blocks: Iterable[PointBlock]) -> Iterator[PointBlock]:
    """The given blocks cut into stored blocks of up to ``BLOCK_POINTS`` points (an empty one yields none)."""
    for block in blocks:
        for start in range(0, len(block), BLOCK_POINTS):
            yield block.part(start, start + BLOCK_POINTS)


def _copy(cur: psycopg.Cursor[Any], table: str, area_id: int, first_id: int, blocks: Iterable[PointBlock], *,
          freeze: bool) -> int:
    """Send the points into ``table`` as blocks of up to ``BLOCK_POINTS`` by one binary COPY; the number of points
    sent. Each block given is cut into stored blocks of its own (a stored block never spans two)."""
    statement = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY{})").format(
        sql.Identifier(table), sql.SQL(", FREEZE") if freeze else sql.SQL(""))
    count = 0
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as cp:
        cp.write(COPY_HEADER)
        for part in _stored_parts(blocks):
            cp.write(encode_block(area_id, first_id + count, part))
            count += len(part)
        cp.write(COPY_TRAILER)
    return count


def _create_table(cur: psycopg.Cursor[Any], table: str, area_id: int) -> None:
    """A table shaped as a partition of ``demand_point_blocks`` for the area (its columns spelled out, and its bytes
    stored as they are)."""
    # the columns spelled out, not LIKE demand_point_blocks: LIKE would hold a lock on the parent table until commit,
    # and two areas' imports, each then dropping its old partition, would wait for each other (a deadlock)
    cur.execute(sql.SQL("CREATE TABLE {} (" + COLUMN_TYPES + ", CONSTRAINT {} CHECK (area_id = {}))").format(
        sql.Identifier(table), sql.Identifier(f"{table}_area"), sql.Literal(int(area_id))))
    cur.execute(sql.SQL("ALTER TABLE {} {}").format(sql.Identifier(table), sql.SQL(", ").join(
        sql.SQL("ALTER COLUMN {} SET STORAGE EXTERNAL").format(sql.Identifier(c)) for c in BYTE_COLUMNS)))


@dataclass(frozen=True)
class LoadedPoints:
    """Points loaded into a new table by ``load_points``, waiting to be swapped in (``swap_points``)."""

    area_id: int
    table: str
    count: int


def load_points(conn: PgConnection[Any], area_id: int, blocks: Iterable[PointBlock]) -> LoadedPoints:
    """Load ``blocks`` into a new table created in the open transaction of ``conn`` (binary COPY, FREEZE), to be
    swapped in for the area's points by ``swap_points`` in the same transaction. The blocks are consumed while the
    COPY runs (the server takes one while the next is made): an exception from them aborts the COPY and, raised on,
    the transaction, and the stored points stay as they were."""
    load = f"{partition_name(area_id)}_load"
    with conn.cursor() as cur:
        _lock(cur, area_id)
        _create_table(cur, load, area_id)
        count = _copy(cur, load, area_id, 1, blocks, freeze=True)
    return LoadedPoints(int(area_id), load, count)


def swap_points(conn: PgConnection[Any], loaded: LoadedPoints) -> None:
    """Make the loaded table the area's partition of ``demand_point_blocks`` in place of the one it had: the old one
    is dropped and the new one attached (its CHECK constraint spares the scan attaching would make), in the open
    transaction of ``conn``. Reads of the points wait from here until the transaction ends."""
    name = partition_name(loaded.area_id)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        cur.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.Identifier(TABLE), sql.Identifier(loaded.table), sql.Literal(loaded.area_id)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(loaded.table),
                                                                 sql.Identifier(name)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            sql.Identifier(name), sql.Identifier(f"{loaded.table}_area"), sql.Identifier(f"{name}_area")))


def replace_points(conn: PgConnection[Any], area_id: int, blocks: Iterable[PointBlock]) -> int:
    """Make ``blocks`` the area's stored points, in the open transaction of ``conn``: ``load_points`` then
    ``swap_points``. Returns the number of points."""
    loaded = load_points(conn, area_id, blocks)
    swap_points(conn, loaded)
    return loaded.count


def append_points(conn: PgConnection[Any], area_id: int, blocks: Iterable[PointBlock]) -> int:
    """Add ``blocks`` to the area's stored points (numbered on from the last), by binary COPY into its partition
    (made when the area has none), in the open transaction of ``conn``. Returns the number of points added."""
    name = partition_name(area_id)
    with conn.cursor() as cur:
        _lock(cur, area_id)
        cur.execute(sql.SQL("SELECT to_regclass({})").format(sql.Literal(name)))
        found = cur.fetchone()
        if found is None or found[0] is None:
            _create_table(cur, name, area_id)
            cur.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                sql.Identifier(TABLE), sql.Identifier(name), sql.Literal(int(area_id))))
        cur.execute(sql.SQL("SELECT coalesce(max(first_id + n - 1), 0) FROM {}").format(sql.Identifier(name)))
        row = cur.fetchone()
        last = int(row[0]) if row is not None else 0
        return _copy(cur, name, area_id, last + 1, blocks, freeze=False)


def drop_points(conn: PgConnection[Any], area_id: int) -> None:
    """Forget the area's stored points (its partition), in the open transaction of ``conn``."""
    with conn.cursor() as cur:
        _lock(cur, area_id)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(partition_name(area_id))))


# --- reading -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointTotals:
    """An area's stored points in sum: their ``count``, the number of the last (``last_id``) and their total
    ``weight``; read from the blocks' own numbers, without their bytes."""

    count: int
    last_id: int
    weight: float


def point_totals(conn: Connection, area_id: int) -> PointTotals:
    """The area's stored points in sum (``PointTotals``)."""
    with driver_of(conn).cursor() as cur:
        cur.execute(sql.SQL("SELECT coalesce(sum(n), 0), coalesce(max(first_id + n - 1), 0), "
                            "coalesce(sum(weight_sum), 0) FROM {} WHERE area_id = %s").format(sql.Identifier(TABLE)),
                    (int(area_id),))
        row = cur.fetchone()
    assert row is not None
    return PointTotals(int(row[0]), int(row[1]), float(row[2]))


def point_columns(conn: Connection, area_id: int, columns: Iterable[str], *,
                  box: tuple[float, float, float, float] | None = None) -> dict[str, np.ndarray]:
    """Columns of the area's stored points as arrays in the order of their numbers: any of ``BYTE_COLUMNS``
    (``lon``, ``lat`` degrees, ``x``, ``y`` metres, ``weight``, ``micros``: ``NO_TIME`` for a point without a time) and
    ``id`` (their numbers). One query, one snapshot. ``box`` (west, south, east, north: metres in the area's CRS)
    keeps the points inside it, edges included: blocks lying outside it are not read."""
    wanted = list(dict.fromkeys(columns))
    stored = [c for c in wanted if c != "id"]
    unknown = set(stored) - set(BYTE_COLUMNS)
    if unknown:
        raise ValueError(f"no stored point column {sorted(unknown)}")
    read = list(dict.fromkeys([*stored, *(("x", "y") if box is not None else ())]))
    where = sql.SQL("area_id = %s")
    params: list[Any] = [int(area_id)]
    if box is not None:
        where = sql.SQL("area_id = %s AND east >= %s AND west <= %s AND north >= %s AND south <= %s")
        params += [float(box[0]), float(box[2]), float(box[1]), float(box[3])]
    with driver_of(conn).cursor(binary=True) as cur:
        cur.execute(sql.SQL("SELECT first_id, n{} FROM {} WHERE {} ORDER BY first_id").format(
            sql.SQL("").join(sql.SQL(", ") + sql.Identifier(c) for c in read), sql.Identifier(TABLE), where),
            params)
        rows = cur.fetchall()
    first = np.array([r[0] for r in rows], np.int64)
    count = np.array([r[1] for r in rows], np.int64)
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(read, start=2):
        if name == "micros":
            parts = [np.frombuffer(r[k], ">i8") if r[k] is not None else np.full(r[1], NO_TIME, ">i8") for r in rows]
            kind: type = np.int64
        else:
            parts = [np.frombuffer(r[k], ">f8") for r in rows]
            kind = np.float64
        out[name] = np.concatenate(parts).astype(kind) if parts else np.empty(0, kind)
    del rows
    if "id" in wanted:
        out["id"] = concat_ranges(first, count)
    if box is not None:
        x, y = out["x"], out["y"]
        keep = (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])
        if not keep.all():
            out = {name: a[keep] for name, a in out.items()}
    return {name: out[name] for name in wanted}


QUARTER_US = 900_000_000
"""A quarter of an hour in microseconds: every time zone's offset and change falls on one."""


def hours_of_week(micros: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """The local hour of the week (Monday 00:00 is 0, to 167) in ``zone`` of instants in microseconds since
    2000-01-01 UTC. Instants are grouped by quarter of an hour, within which the local hour cannot change: each
    quarter of the span is converted once (pandas) and the points take their quarter's hour, so that ten million
    instants cost one pass."""
    first = int(micros.min()) // QUARTER_US
    quarter = micros // QUARTER_US - first
    span = int(quarter.max()) + 1
    if span > 4 * len(micros) + 100_000:  # instants spread over more quarters than there are: one by one
        quarter, first = micros // QUARTER_US, 0
        table_of, index = np.unique(quarter, return_inverse=True)
    else:
        table_of, index = np.arange(span, dtype=np.int64), quarter
    utc = pd.DatetimeIndex(((table_of + first) * QUARTER_US + PG_EPOCH_US).astype("datetime64[us]")).tz_localize("UTC")
    local = utc.tz_convert(zone)
    table = (local.day_of_week * 24 + local.hour).to_numpy(np.int16)
    return np.asarray(table[index], np.int16)


@dataclass
class StoredPoints:
    """An area's stored demand points as arrays, in their order of storage (``id``): ``x``, ``y`` metres in the
    area's metric CRS (east, north), ``lon``, ``lat`` WGS 84 degrees, ``weight`` (orders), ``hour`` the hour of the
    week of the order's time in ``timezone`` (``weekday * 24 + hour``, Monday 0, 0–167; -1 without a time), ``ix``,
    ``iy`` the grid indices of the point's cell (squares of ``cell_size`` metres: ``floor(x / cell_size)``),
    ``first_time`` and ``last_time`` the span of the stored times (None without any); ``ids`` the points' database
    ids (ascending)."""

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray
    hour: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    cell_size: float
    first_time: pd.Timestamp | None = None
    last_time: pd.Timestamp | None = None
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.weight)

    @property
    def cell_key(self) -> np.ndarray:
        """The key of each point's cell as the stored cells have it (``200m:ix:iy``, the size as PostgreSQL prints
        a float), as an array of Python strings."""
        return np.asarray(cell_keys(self.cell_size, self.ix, self.iy), dtype=object)


def cell_keys(size: float, ix: np.ndarray, iy: np.ndarray) -> list[str]:
    """Cell keys ``{size}m:{ix}:{iy}`` (``200m:2210:22152``; the size as PostgreSQL prints a float: ``200``,
    ``150.5``)."""
    prefix = repr(float(size)).removesuffix(".0") + "m:"
    return [f"{prefix}{x}:{y}" for x, y in zip(ix.tolist(), iy.tolist(), strict=True)]


def stray_squares(conn: Connection, area_id: int, layer_id: int, cell_size_m: float) -> int:
    """How many of the area's stored points lie in none of the layer's squares of ``cell_size_m`` metres (its cells'
    keys, ``cell_keys``): points stored after the cells were made."""
    got = point_columns(conn, area_id, ("x", "y"))
    if not len(got["x"]):
        return 0
    size = float(cell_size_m)
    squares, counts = np.unique(lattice_code(np.floor(got["x"] / size), np.floor(got["y"] / size)),
                                return_counts=True)
    keys = cell_keys(size, *lattice_squares(squares))
    stored = set(conn.execute(text("SELECT cell_key FROM demand_cells WHERE layer_id = :l"),
                              {"l": int(layer_id)}).scalars())
    return int(counts[[k not in stored for k in keys]].sum())


def stored_points(conn: Connection, area: AreaInfo, *, cell_size_m: float, timezone: str,
                  box: tuple[float, float, float, float] | None = None) -> StoredPoints:
    """The area's stored demand points (see ``StoredPoints``), their cells squares of ``cell_size_m`` metres. The
    hour of the week is read in ``timezone`` (an IANA name). One query reads the area's blocks (``point_columns``),
    in one snapshot. ``box`` (west, south, east, north: metres in the area's CRS) keeps only the points inside it,
    edges included (a part of a partitioned run)."""
    zone = zone_of(timezone)
    got = point_columns(conn, area.id, ("id", *BYTE_COLUMNS), box=box)
    x, y, micros = got["x"], got["y"], got["micros"]
    has = micros != NO_TIME
    hour = np.full(len(micros), -1, np.int16)
    first = last = None
    if has.any():
        stamps = micros[has]
        hour[has] = hours_of_week(stamps, zone)
        first, last = (pd.Timestamp(int(v) + PG_EPOCH_US, unit="us", tz="UTC") for v in (stamps.min(), stamps.max()))
    size = float(cell_size_m)
    return StoredPoints(x=x, y=y, lon=got["lon"], lat=got["lat"], weight=got["weight"], hour=hour,
                        ix=np.floor(x / size).astype(np.int64), iy=np.floor(y / size).astype(np.int64),
                        cell_size=size, first_time=first, last_time=last, ids=got["id"])
