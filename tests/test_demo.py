"""The demo as a new user runs it: `yizhan demo` on a bare checkout (the shipped extract, no download, no shared
data), what it writes and prints with --no-serve, its words when no site can be recommended, and the URLs it
prints when serving (the area's own centre, a staff key that works)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from console_session import HTML, signed_in

from yizhan.db.cluster import free_port
from yizhan.demo import DEMO_BBOX, DEMO_EXTRACT, find_extract, no_sites_reason
from yizhan.geo.osm import extract_bounds

# a small made-up town in Shanghai: a 5 x 5 street grid 100 m apart, two possible hosts, restaurants, a building
TOWN_ORIGIN = (121.4700, 31.2300)  # lon, lat of the south-west corner
TOWN_STEP = (0.00105, 0.0009)  # about 100 m east and north


def _town_osm() -> str:
    """OSM XML of the made-up town (bounds in the header), lon/lat degrees."""
    lon0, lat0 = TOWN_ORIGIN
    dx, dy = TOWN_STEP
    nodes, ways = [], []

    def node(i: int, lon: float, lat: float, tags: dict[str, str] | None = None) -> None:
        inner = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in (tags or {}).items())
        nodes.append(f'<node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}">{inner}</node>')

    for r in range(5):
        for c in range(5):
            node(1 + r * 5 + c, lon0 + c * dx, lat0 + r * dy)
    way_id = 100
    for r in range(5):
        refs = "".join(f'<nd ref="{1 + r * 5 + c}"/>' for c in range(5))
        ways.append(f'<way id="{way_id}" version="1">{refs}<tag k="highway" v="residential"/>'
                    f'<tag k="name" v="纬{r}路"/></way>')
        way_id += 1
    for c in range(5):
        refs = "".join(f'<nd ref="{1 + r * 5 + c}"/>' for r in range(5))
        ways.append(f'<way id="{way_id}" version="1">{refs}<tag k="highway" v="residential"/>'
                    f'<tag k="name" v="经{c}路"/></way>')
        way_id += 1
    node(500, lon0 + 1.2 * dx, lat0 + 1.3 * dy, {"amenity": "bank", "name": "示例银行"})
    node(501, lon0 + 3.1 * dx, lat0 + 2.8 * dy, {"amenity": "fuel"})
    for i in range(8):
        node(600 + i, lon0 + (0.5 + (i % 4)) * dx, lat0 + (0.5 + i // 4 * 2) * dy, {"amenity": "restaurant"})
    corners = [(2.2, 2.2), (2.8, 2.2), (2.8, 2.7), (2.2, 2.7)]
    for j, (a, b) in enumerate(corners):
        node(700 + j, lon0 + a * dx, lat0 + b * dy)
    refs = "".join(f'<nd ref="{700 + j}"/>' for j in [0, 1, 2, 3, 0])
    ways.append(f'<way id="{way_id}" version="1">{refs}<tag k="building" v="apartments"/></way>')
    west, south = lon0 - 0.0002, lat0 - 0.0002
    east, north = lon0 + 4 * dx + 0.0002, lat0 + 4 * dy + 0.0002
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test">\n'
            f'<bounds minlat="{south:.7f}" minlon="{west:.7f}" maxlat="{north:.7f}" maxlon="{east:.7f}"/>\n'
            + "\n".join(nodes + ways) + "\n</osm>\n")


@pytest.fixture
def town(tmp_path: Path) -> Path:
    path = tmp_path / "shanghai_town.osm"
    path.write_text(_town_osm(), encoding="utf-8")
    return path


def _env(cli_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(cli_env, **extra)
    env.pop("YIZHAN_STAFF_KEY", None)
    return env


def _yizhan(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "yizhan.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"yizhan {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _files_written(stdout: str) -> dict[str, Path]:
    """The "label: path" lines under "files written" in the demo's output."""
    section = stdout.split("files written:", 1)[1]
    found = {}
    for line in section.splitlines():
        m = re.match(r"^  (.+?): (/\S.*)$", line)
        if m:
            found[m.group(1)] = Path(m.group(2).strip())
    return found


def test_shipped_extract_is_the_default_and_holds_the_demo_bounds():
    assert find_extract(None) == DEMO_EXTRACT and DEMO_EXTRACT.suffixes == [".osm", ".pbf"]
    assert extract_bounds(DEMO_EXTRACT) == pytest.approx(DEMO_BBOX)
    assert (DEMO_EXTRACT.parent / "README.md").read_text(encoding="utf-8").count("© OpenStreetMap contributors")
    given = Path("elsewhere.osm.pbf")
    assert find_extract(given) == given


def test_demo_no_serve_on_a_bare_checkout(cli_env, tmp_path):
    """No --osm and no shared data: the shipped extract; only true lines, every written file listed."""
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()  # a folder with no shared data beside it
    proc = _yizhan("demo", "--no-serve", env=_env(cli_env), cwd=run_dir)
    out, log = proc.stdout, proc.stderr
    assert "beijing_haidian_wudaokou.osm.pbf" in log and "download" not in (out + log).lower()
    for text in ("covered share, straight line", "covered share, along streets", "3 new sites (recommendation run 1)",
                 "covered share with them", "yizhan serve", "© OpenStreetMap contributors"):
        assert text in out, text
    for text in ("served", "staff key", "X-API-Key", "http://", "https://", "serving on"):
        assert text not in out, text
    assert re.search(r"console account \(admin, password shown only now\): demo / \S{16} ", out), out
    files = _files_written(out)
    out_dir = (tmp_path / "out").resolve()
    expected = {out_dir / n for n in ("map_run2.html", "map_recommendation1.html", "gaps_run2.csv",
                                      "gaps_run2.geojson", "yizhan-assets", "demo/stations.csv", "demo/demand.csv",
                                      "demo/boundary.geojson")}
    assert set(files.values()) == expected
    assert all(p.exists() for p in expected)
    on_disk = {p for p in out_dir.iterdir()} | {p for p in (out_dir / "demo").iterdir()}
    assert on_disk - {out_dir / "demo"} == expected  # nothing written that is not listed
    m = re.search(r"centre ([\d.]+), ([\d.]+) \(lon, lat\)", out)
    assert m is not None
    lon, lat = float(m.group(1)), float(m.group(2))
    w, s, e, n = DEMO_BBOX
    assert w < lon < e and s < lat < n


def test_no_sites_reason_in_words():
    none = no_sites_reason(candidates=0, demand_uncovered=5.0, sites=None, radius_m=1000)
    assert none is not None and "没有可作为候选点的场所" in none and "no premises" in none
    covered = no_sites_reason(candidates=4, demand_uncovered=0.0, sites=None, radius_m=800)
    assert covered is not None and "已覆盖全部需求" in covered and "already cover all demand within 800 m" in covered
    unreachable = no_sites_reason(candidates=4, demand_uncovered=12.5, sites=0, radius_m=500, profile="bike")
    assert unreachable is not None and "4 个候选点" in unreachable
    assert ("none of the 4 candidate sites reaches uncovered demand within 500 m along the cycling network"
            in unreachable)
    assert no_sites_reason(candidates=4, demand_uncovered=12.5, sites=3, radius_m=500) is None


def test_demo_serves_at_the_areas_own_centre(cli_env, tmp_path, town):
    """Another extract: nothing left to cover is said in words; the printed URLs use that area's centre and the
    printed staff key opens the staff endpoints of the server the demo starts."""
    w, s, e, n = extract_bounds(town)
    port = free_port()
    env = _env(cli_env, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "yizhan.cli", "demo", "--osm", str(town), "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 300
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("serving on"):
                break
        out = "".join(lines)
        assert "serving on" in out, out + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        assert "No new site needed" in out and "无需新站点" in out
        assert "recommendation map" not in out
        nearest = re.search(r"(http://\S+/stations/nearest\?lon=([\d.]+)&lat=([\d.]+)&k=3)", out)
        assert nearest is not None, out
        lon, lat = float(nearest.group(2)), float(nearest.group(3))
        assert lon == pytest.approx((w + e) / 2, abs=1e-4) and lat == pytest.approx((s + n) / 2, abs=1e-4)
        key = re.search(r"X-API-Key\)\s*│\s*(\S+) \(valid while this server runs\)", out)
        assert key is not None, out
        assert f"http://127.0.0.1:{port}/map?run=2" in out and f"http://127.0.0.1:{port}/docs" in out
        assert re.search(rf"rider's page\s*│\s*http://127.0.0.1:{port}/\s", out), out
        with httpx.Client(timeout=30) as client:
            for _ in range(100):
                try:
                    found = client.get(nearest.group(1))
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert found.status_code == 200, found.text
            stations = [f["properties"] for f in found.json()["features"]]
            assert len(stations) == 2  # the town's two stations, both well within its 400 m
            assert all(math.isfinite(st["distance_m"]) and st["distance_m"] < 400 for st in stations)
            assert client.get(f"http://127.0.0.1:{port}/runs").status_code in (401, 403)
            assert client.get(f"http://127.0.0.1:{port}/runs", headers={"X-API-Key": key.group(1)}).status_code == 200
            assert client.get(f"http://127.0.0.1:{port}/map?run=2",
                              headers={"X-API-Key": key.group(1)}).status_code == 200
        account = re.search(r"password shown only now\): (\S+) / (\S+) ", out)
        assert account is not None and f"http://127.0.0.1:{port}/console" in out, out
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as browser:  # the console, as a person
            assert signed_in(browser, account.group(1), account.group(2)).status_code == 303
            page = browser.get("/map?run=2", headers=HTML)
            assert page.status_code == 200 and "leaflet" in page.text.lower()
            assert browser.get("/docs", headers=HTML).status_code == 200  # the docs it printed, signed in
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "YIZHAN_STAFF_KEY" not in os.environ
