"""The demo job end to end: database, a sample area from an OSM extract, import, coverage, map, gap report."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yizhan.errors import SetupError
from yizhan.settings import get_settings

DEMO_EXTRACT = "beijing_haidian_wudaokou.osm"
DEMO_BBOX = (116.3084, 39.9905, 116.3320, 40.0123)  # west, south, east, north (WGS 84)
_REPO = Path(__file__).resolve().parent


def find_extract(osm: Path | None, *, say: Callable[[str], None]) -> Path:
    """The demo's OSM extract: the given path, else the shared Wudaokou extract, else a download when online."""
    if osm is not None:
        return osm
    for base in (Path.cwd(), _REPO):
        candidate = base.parent / "shared" / "data" / "osm" / DEMO_EXTRACT
        if candidate.exists():
            return candidate
    target = get_settings().data_dir / "osm" / DEMO_EXTRACT
    if target.exists():
        return target
    w, s, e, n = DEMO_BBOX
    url = f"https://overpass-api.de/api/map?bbox={w},{s},{e},{n}"
    say(f"no local extract; downloading the demo area from {url}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=90) as resp:
            target.write_bytes(resp.read())
    except OSError as exc:
        raise SetupError(
            f"no OpenStreetMap extract for the demo and the download failed ({exc}). Export the area "
            f"{w},{s},{e},{n} from openstreetmap.org (Export > Overpass API) or any .osm/.osm.pbf extract and "
            "pass it with `yizhan demo --osm FILE`.") from exc
    return target


def run_demo(osm: Path | None = None, *, seed: int = 7, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo job; returns what a person wants to see: figures and the paths of the files written."""
    from yizhan.areas import ensure_area
    from yizhan.coverage.runs import load_run, run_coverage
    from yizhan.coverage.streets import build_area_graph
    from yizhan.data.demand import import_demand
    from yizhan.data.sample import sample_from_extract
    from yizhan.db.engine import get_engine
    from yizhan.maps.folium_map import write_map
    from yizhan.maps.recommend_map import map_for_recommendation
    from yizhan.maps.run_map import map_for_run
    from yizhan.reports.writer import write_gap_report
    from yizhan.siting.candidates import candidates_from_extract, filter_candidates, store_candidates
    from yizhan.siting.recommend import load_recommendation, recommend
    from yizhan.stations.service import import_stations

    settings = get_settings()
    extract = find_extract(osm, say=say)
    say("database: " + ("DATABASE_URL" if settings.database_url else f"embedded cluster in {settings.data_dir}"))
    engine = get_engine()
    say(f"building the sample area from {extract.name} (synthetic stations and demand, seed {seed})")
    sample = sample_from_extract(extract, seed=seed)
    out_dir = settings.out_dir
    files = sample.write(out_dir / "demo")
    with engine.begin() as conn:
        area = ensure_area(conn, sample.name, boundary=sample.boundary, crs_epsg=sample.crs_epsg,
                           source=f"{extract.name} (synthetic demo data; © OpenStreetMap contributors)")
    say(f"importing {len(sample.stations)} stations")
    st = import_stations(engine, files["stations"], area=area.name)
    say(f"importing {len(sample.demand)} demand points")
    dm = import_demand(engine, files["demand"], area=area.name, cell_size_m=settings.cell_size_m)
    say("street networks (walk, bike) from the extract")
    graphs = {p: build_area_graph(area, extract, profile=p) for p in ("walk", "bike")}
    say(f"straight-line coverage, radius {settings.radius_m:g} m")
    straight = run_coverage(engine, area=area.name, radius_m=settings.radius_m, progress=say)
    say(f"coverage along the walking network, radius {settings.radius_m:g} m")
    summary = run_coverage(engine, area=area.name, radius_m=settings.radius_m, mode="network", profile="walk",
                           progress=say)
    run = load_run(engine, summary["run_id"])
    map_path = write_map(map_for_run(run), out_dir / f"map_run{summary['run_id']}.html")
    report = write_gap_report(run, out_dir)
    say("candidate sites: the extract's host premises (fuel, banks, shops, post offices, offices)")
    with engine.begin() as conn:
        cands, _ = filter_candidates(candidates_from_extract(extract), area)
        store_candidates(conn, area, cands, source=f"{extract.name} (© OpenStreetMap contributors)")
    say("recommending 3 new sites along the walking network")
    rec = recommend(engine, area=area.name, k=3, mode="network", profile="walk", radius_m=settings.radius_m,
                    progress=say)
    rec_map = write_map(map_for_recommendation(load_recommendation(engine, rec["run_id"])),
                        out_dir / f"map_recommendation{rec['run_id']}.html")
    return {
        "area": f"{area.name} (EPSG:{area.crs_epsg})",
        "stations imported": f"{st.rows} ({st.inserted} new, {st.updated} updated)",
        "demand": f"{dm.points} points -> {dm.cells} cells of {dm.cell_size_m:g} m",
        "street network (walk / bike)": " / ".join(f"{g.n_nodes} nodes, {g.n_edges} edges"
                                                   for g in graphs.values()),
        "runs (straight / network)": f"{straight['run_id']} / {summary['run_id']}",
        "radius": f"{summary['radius_m']:g} m",
        "covered share, straight line": f"{straight['covered_share']:.1%} of demand "
                                        f"({straight['demand_covered']:g} of {straight['demand_total']:g})",
        "covered share, along streets": f"{summary['covered_share']:.1%} of demand "
                                        f"({summary['demand_covered']:g} of {summary['demand_total']:g})",
        "gaps (straight / network)": f"{straight['gaps']} / {summary['gaps']}",
        "3 new sites (recommendation run " + str(rec["run_id"]) + ")": "; ".join(
            f"{s['rank']}. {s['name']} (+{s['gain']:g})" for s in rec["sites"]),
        "covered share with them, along streets": f"{rec['covered_share_before']:.1%} -> "
                                                  f"{rec['covered_share_after']:.1%} ({rec['method']}, gap "
                                                  f"{rec['gap']:.2%})",
        "recommendation map": rec_map.resolve(),
        "map": map_path.resolve(),
        "gap report (CSV)": report["csv"].resolve(),
        "gap report (GeoJSON)": report["geojson"].resolve(),
        "sample data": files["stations"].parent.resolve(),
        "note": sample.synthetic_note,
    }
