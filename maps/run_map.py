"""The planner's map of a stored coverage run."""

from __future__ import annotations

import folium

from yizhan.coverage.runs import RunData
from yizhan.maps.folium_map import ASSET_DIR_NAME, map_from_layers


def map_from_run(run: RunData, *, asset_prefix: str = ASSET_DIR_NAME) -> folium.Map:
    """Folium map of ``run``: its stations, service rings (and, for a network run, the area reached along the
    streets), demand heat and ranked gaps (all WGS 84)."""
    return map_from_layers(stations=run.stations, cells=run.cells, gaps=run.gaps, summary=run.summary,
                           radius_m=float(run.summary["radius_m"]), boundary=run.area.boundary,
                           asset_prefix=asset_prefix,
                           service_area=run.covered_geom if run.summary["mode"] == "network" else None)
