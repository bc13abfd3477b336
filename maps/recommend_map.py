"""The planner's map of a stored recommendation run: existing stations, the recommended new sites with their
rings, the demand and the gaps that remain after the new sites (all WGS 84). An hours recommendation also draws
the stations it extends or opens round the clock and lists its actions in one ranked order."""

from __future__ import annotations

import folium
import numpy as np

from yizhan.maps.assets import ASSET_DIR_NAME
from yizhan.maps.folium_map import map_from_layers
from yizhan.settings import Settings
from yizhan.siting.recommend import street_reach
from yizhan.siting.runs import RecommendationData


def map_for_recommendation(rec: RecommendationData, *, settings: Settings,
                           asset_prefix: str = ASSET_DIR_NAME) -> folium.Map:
    """Folium map of ``rec``: the recommended sites as their own layer (numbered, dashed rings of the radius) and
    listed in the summary (address, host, the orders each adds, the share after; the solver's proof folded),
    existing stations, demand heat, the remaining gaps of at least ``settings.min_gap_demand`` orders, the study
    area and its offline streets when built; for a network recommendation also the area the stations and the new
    sites reach along the streets. Times are local (``settings.timezone``). For an hours recommendation
    (``problem`` "hours") the stations extended or opened round the clock get markers of their own and the panel
    lists every action (``summary["actions"]``) in its rank with its kind; shares are then of demand-hours."""
    from yizhan.coverage.streets import street_lines

    s = rec.summary
    summary = {
        "run_id": f"R{s['run_id']}", "area": rec.area.label, "area_name": rec.area.display_name or rec.area.name,
        "mode": s["mode"], "radius_m": s["radius_m"],
        "stations": int((rec.stations["status"] == "active").sum()), "demand_total": s["demand_total"],
        "demand_covered": s["demand_covered_after"], "covered_share": s["covered_share_after"],
        "covered_share_before": s["covered_share_before"], "gaps": s["remaining_gaps"],
        "created_at": s["created_at"], "new_sites": len(s["sites"]), "method": s["method"], "gap": s["gap"],
        "profile": s["profile"], "bound": s["bound"], "candidates": s["candidates"], "seconds": s["seconds"],
        "problem": s["problem"],
    }
    actions = None
    if s["problem"] == "hours":
        actions = list(s.get("actions") or [])
        summary["extend_to"] = ((s.get("params") or {}).get("hours") or {}).get("extend_to")
    gaps = rec.gaps.assign(nearest_station="", nearest_distance_m=np.nan)
    cells = rec.cells.assign(covered=False, distance_m=np.nan)
    return map_from_layers(stations=rec.stations, cells=cells, gaps=gaps, summary=summary,
                           radius_m=float(s["radius_m"]), boundary=rec.area.boundary, asset_prefix=asset_prefix,
                           streets=street_lines(rec.area, settings), sites=rec.sites,
                           service_area=street_reach(rec, settings), min_gap_demand=settings.min_gap_demand,
                           timezone=settings.timezone, actions=actions)
