"""The demo job end to end: database, a sample area from an OSM extract, import, coverage, map, gap report,
candidate sites and a recommendation of new sites.

Without ``--osm`` the demo reads the small Wudaokou extract shipped with the package (``data/osm``), so it runs
offline. Coordinates are WGS 84 lon/lat degrees in (lon, lat) order; radii and distances are metres.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from yizhan.errors import SetupError
from yizhan.settings import Settings, get_settings

DEMO_EXTRACT = Path(__file__).resolve().parent / "data" / "osm" / "beijing_haidian_wudaokou.osm.pbf"
DEMO_BBOX = (116.3084, 39.9905, 116.3320, 40.0123)  # west, south, east, north (WGS 84 lon/lat degrees)
NEW_SITES = 3  # how many new sites the demo recommends
HOST_PREMISES = "加油站、银行、便利店、超市、邮局、社区服务中心、政务及工会办公场所"
HOST_PREMISES_EN = "fuel stations, banks, convenience shops, supermarkets, post offices, community centres, " \
                   "government and union offices"


@dataclass
class DemoResult:
    """What the demo did, for a person to read.

    Attributes
    ----------
    area : str
        Name of the demo area (the extract's file name without suffixes).
    centre : tuple of float
        Centre of the area's boundary, ``(lon, lat)`` in WGS 84 degrees.
    figures : dict of str to str
        Headline figures, label → text (Chinese label with English beside it).
    files : dict of str to Path
        Every file and folder written, label → absolute path.
    run_id : int
        The coverage run along the walking network (its map and gap report are written).
    recommendation_id : int or None
        The recommendation run, None when no recommendation was possible.
    account : (name, password) or None
        The console account made for the demo (``demo_account``), its password to be shown once; None when the
        database already had accounts.
    no_sites_reason : str or None
        Why no new site could be recommended (Chinese, then English); None when sites were found.
    note : str
        States that the stations and demand are synthetic, with the OpenStreetMap credit.
    """

    area: str
    centre: tuple[float, float]
    figures: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    run_id: int = 0
    recommendation_id: int | None = None
    no_sites_reason: str | None = None
    note: str = ""
    account: tuple[str, str] | None = None


def find_extract(osm: Path | None) -> Path:
    """The demo's OSM extract: ``osm`` when given, else the Wudaokou extract shipped with the package.

    Never downloads anything. Raises SetupError when the shipped extract is missing (a broken installation).
    """
    if osm is not None:
        return osm
    if not DEMO_EXTRACT.is_file():
        w, s, e, n = DEMO_BBOX
        raise SetupError(
            f"演示数据缺失 / the demo's OpenStreetMap extract {DEMO_EXTRACT.name} is not in this installation "
            f"(expected in the package's data/osm folder). Reinstall yizhan, or pass any .osm/.osm.pbf extract "
            f"with `yizhan demo --osm FILE` (e.g. the area {w},{s},{e},{n} exported from openstreetmap.org).")
    return DEMO_EXTRACT


def no_sites_reason(*, candidates: int, demand_uncovered: float, sites: int | None, radius_m: float,
                    profile: str = "walk") -> str | None:
    """Why a recommendation found no new site, in words (Chinese, then English); None when it found some.

    Parameters
    ----------
    candidates : int
        Candidate sites inside the area.
    demand_uncovered : float
        Demand weight not covered by the active stations within ``radius_m`` along the ``profile`` network.
    sites : int or None
        Sites the recommendation chose, None when it was not run.
    radius_m : float
        Service radius in metres.
    profile : str
        Street network: "walk" or "bike".
    """
    way = {"walk": ("步行", "walking"), "bike": ("骑行", "cycling")}.get(profile, (profile, profile))
    if candidates == 0:
        return (f"无法推荐新站点：该区域内没有可作为候选点的场所（{HOST_PREMISES}）。"
                f" No recommendation: the extract has no premises inside the area that could host a station "
                f"({HOST_PREMISES_EN}). Import candidate sites of your own with `yizhan candidates import FILE`.")
    if demand_uncovered <= 0:
        return (f"无需新站点：现有驿站沿{way[0]}路网 {radius_m:g} 米内已覆盖全部需求。"
                f" No new site needed: the active stations already cover all demand within {radius_m:g} m along "
                f"the {way[1]} network.")
    if not sites:
        return (f"无法推荐新站点：{candidates} 个候选点都无法沿{way[0]}路网在 {radius_m:g} 米内到达未覆盖的需求。"
                f" No recommendation: none of the {candidates} candidate sites reaches uncovered demand within "
                f"{radius_m:g} m along the {way[1]} network.")
    return None


def run_demo(osm: Path | None = None, *, seed: int = 7, say: Callable[[str], None] = print,
             settings: Settings | None = None) -> DemoResult:
    """Run the demo job and return its figures and the paths of the files written.

    Builds a synthetic sample area (stations at real premises, demand at real food/shop POIs and buildings) from
    the extract, imports it, runs straight-line and walking-network coverage within the configured radius
    (metres), writes the run's map and gap report, stores every premises of the extract as a candidate site and
    recommends ``NEW_SITES`` new sites along the walking network (or says why none can be recommended); makes the
    console account ``demo_account`` when the database has none.
    """
    from yizhan.areas import ensure_area, remember_extract
    from yizhan.coverage.analysis import run_coverage
    from yizhan.coverage.runs import load_run
    from yizhan.coverage.streets import build_area_graph
    from yizhan.data.demand import import_demand
    from yizhan.data.sample import sample_from_extract
    from yizhan.db.engine import get_engine
    from yizhan.maps.folium_map import write_map
    from yizhan.maps.recommend_map import map_for_recommendation
    from yizhan.maps.run_map import map_for_run
    from yizhan.reports.writer import write_gap_report
    from yizhan.siting.candidates import candidates_from_extract, filter_candidates, store_candidates
    from yizhan.siting.recommend import recommend
    from yizhan.siting.runs import load_recommendation
    from yizhan.stations.service import import_stations

    s = settings or get_settings()
    extract = find_extract(osm)
    radius = s.radius_m
    say("database / 数据库: " + ("DATABASE_URL" if s.database_url else f"embedded cluster in {s.data_dir}"))
    engine = get_engine(s)
    say(f"sample area / 示例区域 from {extract.name} (synthetic stations and demand, seed {seed})")
    sample = sample_from_extract(extract, seed=seed)
    out_dir = s.out_dir
    files = sample.write(out_dir / "demo")
    with engine.begin() as conn:
        area = ensure_area(conn, sample.name, boundary=sample.boundary, crs_epsg=sample.crs_epsg,
                           source=f"{extract.name} (synthetic demo data; © OpenStreetMap contributors)",
                           display_name=sample.display_name)
    centre = sample.boundary.centroid
    result = DemoResult(area=area.name, centre=(round(centre.x, 5), round(centre.y, 5)), note=sample.synthetic_note)
    say(f"importing {len(sample.stations)} stations / 导入驿站")
    st = import_stations(engine, files["stations"], area=area.name)
    say(f"importing {len(sample.demand)} demand points / 导入需求点")
    dm = import_demand(engine, files["demand"], area=area.name, cell_size_m=s.cell_size_m)
    say("street networks (walk, bike) from the extract / 步行、骑行路网")
    graphs = {p: build_area_graph(area, extract, profile=p, settings=s) for p in ("walk", "bike")}
    with engine.begin() as conn:
        remember_extract(conn, area.id, extract)  # its reports name the streets near gaps
    say(f"straight-line coverage, radius {radius:g} m / 直线覆盖")
    straight = run_coverage(engine, area=area.name, radius_m=radius, progress=say, settings=s)
    say(f"coverage along the walking network by hour of the week, with capacity, radius {radius:g} m / "
        f"沿步行路网按小时覆盖与容量")
    walk = run_coverage(engine, area=area.name, radius_m=radius, mode="network", profile="walk", progress=say,
                        settings=s, by_hour=True, capacity=True)
    result.run_id = walk["run_id"]
    run = load_run(engine, walk["run_id"])
    map_path = write_map(map_for_run(run, settings=s), out_dir / f"map_run{walk['run_id']}.html")
    report = write_gap_report(run, out_dir)

    say("candidate sites: every premises of the extract that could host a station / 候选点")
    with engine.begin() as conn:
        cands, _ = filter_candidates(candidates_from_extract(extract), area)
        if not cands.empty:
            store_candidates(conn, area, cands, source=f"{extract.name} (© OpenStreetMap contributors)")
    uncovered = walk["demand_total"] - walk["demand_covered"]
    rec = None
    if len(cands) and uncovered > 0:
        say(f"recommending {NEW_SITES} new sites along the walking network / 推荐新站点")
        rec = recommend(engine, area=area.name, k=NEW_SITES, mode="network", profile="walk", radius_m=radius,
                        progress=say, settings=s)
        result.recommendation_id = rec["run_id"]
    result.no_sites_reason = no_sites_reason(candidates=len(cands), demand_uncovered=uncovered,
                                             sites=len(rec["sites"]) if rec else None, radius_m=radius)

    f = result.figures
    f["区域 / area"] = f"{area.label} (EPSG:{area.crs_epsg}), centre {result.centre[0]}, {result.centre[1]} (lon, lat)"
    f["导入驿站 / stations imported"] = f"{st.rows} ({st.inserted} new, {st.updated} updated)"
    f["需求 / demand"] = f"{dm.points} points -> {dm.cells} cells of {dm.cell_size_m:g} m"
    f["路网 / street network (walk / bike)"] = " / ".join(f"{g.n_nodes} nodes, {g.n_edges} edges"
                                                         for g in graphs.values())
    f["覆盖分析 / runs (straight / network)"] = f"{straight['run_id']} / {walk['run_id']}"
    f["服务半径 / radius"] = f"{walk['radius_m']:g} m"
    f["直线覆盖率 / covered share, straight line"] = (
        f"{straight['covered_share']:.1%} of demand ({straight['demand_covered']:g} of {straight['demand_total']:g})")
    f["沿路网覆盖率 / covered share, along streets"] = (
        f"{walk['covered_share']:.1%} of demand ({walk['demand_covered']:g} of {walk['demand_total']:g})")
    by_hour, capacity = walk.get("by_hour") or {}, walk.get("capacity") or {}
    worst = (by_hour.get("worst_hours") or [None])[0]
    f["按营业时间 / with opening hours"] = (
        f"{by_hour.get('covered_share', 0.0):.1%} of orders reach a station open at their hour"
        + (f"; worst hour {worst['label_zh']} / {worst['label_en']} ({worst['uncovered']:,.0f} orders uncovered)"
           if worst else ""))
    f["拥挤驿站 / crowded stations"] = (
        f"{capacity.get('crowded', 0)} over {capacity.get('crowded_per_seat', 0):g} orders per seat at their peak "
        f"hour ({capacity.get('method', '')})")
    f["盲区 / gaps (straight / network)"] = f"{straight['gaps']} / {walk['gaps']}"
    f["候选点 / candidate sites"] = f"{len(cands)} premises of the extract inside the area"
    if result.no_sites_reason is None and rec is not None:
        f[f"新站点 / {NEW_SITES} new sites (recommendation run {rec['run_id']})"] = "; ".join(
            f"{site['rank']}. {site['name']} (+{site['gain']:g})" for site in rec["sites"])
        f["新增后覆盖率 / covered share with them, along streets"] = (
            f"{rec['covered_share_before']:.1%} -> {rec['covered_share_after']:.1%} ({rec['method']}, "
            f"gap {rec['gap']:.2%})")
    else:
        f["新站点 / new sites"] = str(result.no_sites_reason)

    result.files["地图 / map"] = map_path.resolve()
    result.files["地图资源 / map assets (needed by the maps)"] = (map_path.parent / "yizhan-assets").resolve()
    if rec is not None and rec["sites"]:
        rec_map = write_map(map_for_recommendation(load_recommendation(engine, rec["run_id"]), settings=s),
                            out_dir / f"map_recommendation{rec['run_id']}.html")
        result.files["推荐地图 / recommendation map"] = rec_map.resolve()
    result.files["盲区报告 / gap report (CSV)"] = report["csv"].resolve()
    result.files["盲区报告 / gap report (GeoJSON)"] = report["geojson"].resolve()
    result.files["示例驿站 / sample stations"] = files["stations"].resolve()
    result.files["示例需求 / sample demand"] = files["demand"].resolve()
    result.files["区域边界 / area boundary"] = files["boundary"].resolve()
    result.account = demo_account(engine)
    return result


DEMO_ACCOUNT = "demo"
"""The console account the demo makes when the database has none (an admin, so every console page can be tried)."""


def demo_account(engine: Engine) -> tuple[str, str] | None:
    """When the database has no console account yet: make ``DEMO_ACCOUNT`` an admin with a fresh random password and
    give (name, password), to be shown once; else None (the accounts already there are the ones to sign in with).
    Only the password's argon2 hash is stored."""
    from yizhan.accounts.users import create_user, list_users

    with engine.begin() as conn:
        if list_users(conn):
            return None
        password = secrets.token_urlsafe(12)
        create_user(conn, DEMO_ACCOUNT, "admin", password)
    return DEMO_ACCOUNT, password

