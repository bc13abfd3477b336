"""A first import of GCJ-02 coordinates declared as WGS 84: flagged by where the points lie against the area's
streets (``coverage.placement``), through the CLI and the API; nothing refused, nothing moved."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from api_data import KEY
from cli_runner import run_cli
from pyproj import Transformer
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo
from yizhan.coverage.placement import PlacementEvidence, gcj02_evidence
from yizhan.coverage.streets import load_area_graph
from yizhan.geo.coords import from_wgs84
from yizhan.settings import Settings
from yizhan.siting.candidates import candidates_from_extract, filter_candidates, store_candidates
from yizhan.stations.service import export_stations


def registry_files(engine: Engine, area: AreaInfo, folder: Path) -> tuple[Path, Path]:
    """The area's stations written out as given (WGS 84) and shifted to GCJ-02; then the area is emptied, so an
    import of either is a first import."""
    true_file, _ = export_stations(engine, folder / "true.csv", area=area.name)
    df = pd.read_csv(true_file, dtype=str, keep_default_na=False)
    gx, gy = from_wgs84(df["lon"].astype(float).to_numpy(), df["lat"].astype(float).to_numpy(), "gcj02")
    shifted = df.assign(lon=[f"{v:.7f}" for v in gx], lat=[f"{v:.7f}" for v in gy])
    shifted = shifted[area.contains(gx, gy)]  # read as WGS 84, these still lie in the area (the rest are refused)
    assert len(shifted) >= 5
    shifted_file = folder / "gcj02.csv"
    shifted.to_csv(shifted_file, index=False)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM stations WHERE area_id = :a"), {"a": area.id})
    return true_file, shifted_file


def stored(engine: Engine, area: AreaInfo) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT external_id AS id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations "
                                "WHERE area_id = :a ORDER BY external_id"), conn, params={"a": area.id})


def test_the_rule_needs_points_a_clear_ratio_and_a_clear_gain() -> None:
    assert PlacementEvidence("the streets", 30, 312.0, 18.0).looks_gcj02
    assert not PlacementEvidence("the streets", 4, 312.0, 18.0).looks_gcj02  # too few points
    assert not PlacementEvidence("the streets", 30, 80.0, 45.0).looks_gcj02  # not half
    assert not PlacementEvidence("the streets", 30, 40.0, 18.0).looks_gcj02  # not 25 m better
    line = PlacementEvidence("the streets", 30, 312.0, 18.0).warning()
    assert "312 m from the streets as given, 18 m after a GCJ-02 → WGS 84 shift" in line
    assert "--coord gcj02" in line and "\n" not in line


def with_premises(engine: Engine, area: AreaInfo, osm_path: Path) -> int:
    """Store the area's OSM premises from the real extract, as ``yizhan candidates import --osm`` does."""
    cands, _ = filter_candidates(candidates_from_extract(osm_path), area)
    with engine.begin() as conn:
        store_candidates(conn, area, cands, source="osm")
    return len(cands)


def test_evidence_on_the_real_streets(sample_area: AreaInfo, settings: Settings) -> None:
    graph = load_area_graph(sample_area, "walk", settings)
    pick = np.linspace(0, graph.n_nodes - 1, 40).round().astype(int)  # stations at street corners
    lon, lat = Transformer.from_crs(graph.crs_epsg, 4326, always_xy=True).transform(graph.x[pick], graph.y[pick])
    gx, gy = from_wgs84(lon, lat, "gcj02")
    for (x, y), expected in (((lon, lat), False), ((gx, gy), True)):
        found = gcj02_evidence(sample_area, np.asarray(x), np.asarray(y), settings=settings)
        assert found is not None and found.evidence == "the streets" and found.points == 40
        assert found.looks_gcj02 is expected, found


def test_evidence_from_the_osm_premises(engine: Engine, sample_area: AreaInfo, settings: Settings,
                                        osm_path: Path, tmp_path: Path) -> None:
    true_file, shifted_file = registry_files(engine, sample_area, tmp_path)
    assert with_premises(engine, sample_area, osm_path) >= 20
    for path, expected in ((true_file, False), (shifted_file, True)):
        pts = pd.read_csv(path)
        found = gcj02_evidence(sample_area, pts["lon"].to_numpy(), pts["lat"].to_numpy(), settings=settings,
                               engine=engine)
        assert found is not None and found.evidence == "the OSM premises"
        assert found.looks_gcj02 is expected, found


def test_no_evidence_no_warning(engine: Engine, sample_area: AreaInfo, tmp_path: Path) -> None:
    true_file, _ = registry_files(engine, sample_area, tmp_path)
    pts = pd.read_csv(true_file)
    assert gcj02_evidence(sample_area, pts["lon"].to_numpy(), pts["lat"].to_numpy(),
                          settings=Settings(data_dir=tmp_path / "no-graphs"), engine=engine) is None


def test_cli_first_import_of_gcj02_warns_and_stores_as_given(engine: Engine, sample_area: AreaInfo,
                                                            cli_env: dict[str, str], tmp_path: Path,
                                                            osm_path: Path) -> None:
    true_file, shifted_file = registry_files(engine, sample_area, tmp_path)
    with_premises(engine, sample_area, osm_path)
    out = run_cli("stations", "import", str(true_file), "--area", sample_area.name, env=cli_env).stdout
    assert "GCJ-02 → WGS 84" not in out, out
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM stations WHERE area_id = :a"), {"a": sample_area.id})
    res = run_cli("stations", "import", str(shifted_file), "--area", sample_area.name, env=cli_env)
    text_out = " ".join(res.stdout.split())
    assert res.returncode == 0
    assert "from the OSM premises as given" in text_out and "--coord gcj02" in text_out, res.stdout
    given = pd.read_csv(shifted_file).sort_values("id")
    kept = stored(engine, sample_area)
    assert len(kept) == len(given)
    np.testing.assert_allclose(kept["lon"], given["lon"], atol=1e-6)  # warned, not moved
    np.testing.assert_allclose(kept["lat"], given["lat"], atol=1e-6)


def test_api_first_import_returns_the_warning(api: httpx.Client, engine: Engine, sample_area: AreaInfo,
                                              tmp_path: Path, osm_path: Path) -> None:
    true_file, shifted_file = registry_files(engine, sample_area, tmp_path)
    with_premises(engine, sample_area, osm_path)

    def upload(path: Path) -> httpx.Response:
        return api.post("/stations/import", files={"file": (path.name, path.read_bytes(), "text/csv")},
                        data={"area": sample_area.name}, headers={"X-API-Key": KEY})

    r = upload(shifted_file)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["inserted"] == len(pd.read_csv(shifted_file))
    assert len(body["warnings"]) == 1 and "from the OSM premises as given" in body["warnings"][0], body
    r = upload(true_file)
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []


@pytest.mark.parametrize("coord", ["gcj02"])
def test_declared_gcj02_is_not_flagged(api: httpx.Client, engine: Engine, sample_area: AreaInfo, tmp_path: Path,
                                       coord: str) -> None:
    _, shifted_file = registry_files(engine, sample_area, tmp_path)
    r = api.post("/stations/import", files={"file": ("g.csv", shifted_file.read_bytes(), "text/csv")},
                 data={"area": sample_area.name, "coord": coord}, headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []
