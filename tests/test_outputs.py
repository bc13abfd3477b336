"""Output folders that cannot take a file: every writer (map page and its assets, reports, the stations export)
leaves the previous file or none, never half of one and no temporary file, and the command says in one line what
happened and what to do.

Two real failures, both reliable when tests run as root (who ignores permissions): a target folder whose parent is
a regular file (``ENOTDIR``), and a disk that fills up while a file is written, made with the kernel's file-size
limit (``RLIMIT_FSIZE``, ``EFBIG`` "file too large") in a real ``yizhan`` process, so a write really stops half
way.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli
from disks import fill, tiny_disk

from yizhan.maps.assets import ASSET_DIR_NAME
from yizhan.outputs import replacing, replacing_folder

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"
BBOX = "116.3084,39.9905,116.3320,40.0123"
FILE_LIMIT = 2048
"""Bytes a file may grow to in the "full disk" process: less than every output below."""


@pytest.fixture
def run_id(cli_env: dict[str, str], tmp_path: Path) -> int:
    """A stored coverage run of the sample stations."""
    demand = tmp_path / "demand.csv"
    demand.write_text("lon,lat,weight\n116.31,39.995,3\n116.315,40.0,1\n116.33,40.01,2\n", encoding="utf-8")
    run_cli("area", "create", "wudaokou", "--bbox", BBOX, env=cli_env)
    run_cli("stations", "import", str(SAMPLE), env=cli_env)
    run_cli("demand", "import", str(demand), env=cli_env)
    return int(json.loads(run_cli("coverage", "--json", env=cli_env).stdout)["run_id"])


def _full_disk() -> None:
    """In the child before exec: files stop growing at ``FILE_LIMIT`` bytes (EFBIG instead of SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def _yizhan_on_full_disk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yizhan.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=_full_disk)


def _one_line_failure(proc: subprocess.CompletedProcess[str], *words: str, code: int = 1) -> str:
    """The failure's message: exit code ``code``, one line on stderr naming ``words``, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _everything(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_folder_under_a_file_is_told_in_one_line(cli_env, run_id, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder was expected\n", encoding="utf-8")
    for args in (("map", "--out", str(blocker / "maps" / "m.html")),
                 ("report", "--format", "xlsx", "--out", str(blocker / "reports")),
                 ("stations", "export", str(blocker / "export" / "stations.xlsx"))):
        proc = run_cli(*args, env=cli_env, check=False)
        line = _one_line_failure(proc, "cannot write", str(blocker), "--out", code=2)
        assert "not a folder" in line
    assert blocker.read_text(encoding="utf-8") == "a file where a folder was expected\n"


def test_full_disk_leaves_no_partial_files(cli_env, run_id, tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    _one_line_failure(_yizhan_on_full_disk("map", "--out", str(out / "m.html"), env=cli_env),
                      "cannot write", "full", "--out")
    assert _everything(out) == set()  # no page, no half-copied assets
    _one_line_failure(_yizhan_on_full_disk("report", "--format", "xlsx", "--out", str(out), env=cli_env),
                      "cannot write", "full")
    _one_line_failure(_yizhan_on_full_disk("stations", "export", str(out / "s.xlsx"), env=cli_env),
                      "cannot write", "full")
    assert _everything(out) == set()


def test_a_really_full_disk_is_told_in_one_line_and_keeps_the_earlier_files(cli_env, run_id, tmp_path):
    """A tiny tmpfs filled to its last byte: the map, the gap report and the stations export each fail with one
    line naming the file and what to do (exit code 1), leave no partial or temporary file, and an earlier file of
    the same name stays as it was."""
    with tiny_disk(tmp_path / "disk") as disk:
        earlier = {disk / "m.html": b"earlier map", disk / f"gaps_run{run_id}.xlsx": b"earlier report",
                   disk / "s.xlsx": b"earlier export", disk / "s.csv": b"earlier export csv"}
        for path, content in earlier.items():
            path.write_bytes(content)
        fill(disk)
        before = _everything(disk)
        for args, target in ((("map", "--out", str(disk / "m.html")), disk / "m.html"),
                             (("report", "--format", "xlsx", "--out", str(disk)), disk / f"gaps_run{run_id}.xlsx"),
                             (("stations", "export", str(disk / "s.xlsx")), disk / "s.xlsx"),
                             (("stations", "export", str(disk / "s.csv")), disk / "s.csv")):
            proc = subprocess.run([sys.executable, "-m", "yizhan.cli", *args], env=cli_env, capture_output=True,
                                  text=True, timeout=300)
            line = _one_line_failure(proc, "cannot write", "full", code=1)
            assert str(target) in line or str(disk) in line, line
            assert _everything(disk) == before, args  # nothing partial, nothing temporary
        for path, content in earlier.items():
            assert path.read_bytes() == content


def test_a_failed_rewrite_keeps_the_previous_files(cli_env, run_id, tmp_path):
    out = tmp_path / "out"
    run_cli("map", "--out", str(out / "m.html"), env=cli_env)
    run_cli("report", "--format", "xlsx", "--out", str(out), env=cli_env)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert out / ASSET_DIR_NAME / "leaflet-1.9.3" / "leaflet.js" in before and len(before) > 10
    _one_line_failure(_yizhan_on_full_disk("map", "--out", str(out / "m.html"), env=cli_env), "cannot write")
    _one_line_failure(_yizhan_on_full_disk("report", "--format", "xlsx", "--out", str(out), env=cli_env),
                      "cannot write")
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_replacing_removes_the_temporary_file_on_any_failure(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(ValueError), replacing(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise ValueError("the writer failed")
    assert target.read_text(encoding="utf-8") == "old" and _everything(tmp_path) == {"t.txt"}
    with replacing(target) as tmp:
        tmp.write_text("new", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "new" and _everything(tmp_path) == {"t.txt"}
    with pytest.raises(KeyboardInterrupt), replacing_folder(tmp_path / "assets") as folder:
        folder.mkdir()
        (folder / "a.js").write_text("half", encoding="utf-8")
        raise KeyboardInterrupt
    assert _everything(tmp_path) == {"t.txt"}
