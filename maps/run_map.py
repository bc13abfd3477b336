"""The planner's map of a stored coverage run."""

from __future__ import annotations

import folium
import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from yizhan.coverage.runs import RunData
from yizhan.maps.assets import ASSET_DIR_NAME
from yizhan.maps.folium_map import map_from_layers
from yizhan.settings import DEFAULT_TIMEZONE, Settings


def map_from_run(
    run: RunData, *, asset_prefix: str = ASSET_DIR_NAME, units: gpd.GeoDataFrame | None = None,
    streets: BaseGeometry | None = None, min_gap_demand: float = 0.0, timezone: str = DEFAULT_TIMEZONE,
) -> folium.Map:
    """Folium map of ``run``: its stations, service rings (and, for a network run, the area reached along the
    streets), demand heat and ranked gaps (all WGS 84), on an OpenStreetMap or (GCJ-02) Amap basemap.

    ``units`` (EPSG:4326; polygons with ``name, covered_share, demand, stations``) draws the township
    choropleth and the township table; by default the run's own units (:func:`units_choropleth` of
    ``run.unit_polygons`` and ``run.unit_table``). Gaps of less than ``min_gap_demand`` unmet orders are left out
    (the legend counts them); the run's time is shown in ``timezone``; the panel's title is the area's display
    name. A run by hour of the week (``run.hours``) gets the hour selector and its night gaps, a run with
    capacity (``run.loads``) its crowded stations.
    """
    if units is None and run.unit_polygons is not None and run.unit_table is not None:
        units = units_choropleth(run.unit_polygons, run.unit_table)
    return map_from_layers(stations=run.stations, cells=run.cells, gaps=run.gaps,
                           summary={**run.summary, "area": run.area.label,  # the display name people use
                                    "area_name": run.area.display_name or run.area.name},
                           radius_m=float(run.summary["radius_m"]), boundary=run.area.boundary,
                           asset_prefix=asset_prefix,
                           service_area=run.covered_geom if run.summary["mode"] == "network" else None,
                           units=units, streets=streets, min_gap_demand=min_gap_demand, timezone=timezone,
                           hours=run.hours, loads=run.loads)


def units_choropleth(units: gpd.GeoDataFrame, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """Unit polygons (``units_frame``: name, geometry; EPSG:4326) joined on name with a run's ``units_table``
    (name, stations, demand, demand_covered, covered_share, …); units without a row get share NaN, demand and
    stations 0. The ``（未划入单元）unassigned`` row has no polygon and is dropped."""
    if not len(units):
        return gpd.GeoDataFrame({"name": [], "covered_share": [], "demand": [], "stations": []},
                                geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    cols = ["name", "covered_share", "demand", "stations"]
    out = units[["name", units.geometry.name]].merge(table[cols], on="name", how="left")
    out["demand"] = out["demand"].fillna(0.0)
    out["stations"] = out["stations"].fillna(0).astype(int)
    return gpd.GeoDataFrame(out, geometry=units.geometry.name, crs=units.crs).to_crs(4326)


def map_for_run(run: RunData, *, settings: Settings, asset_prefix: str = ASSET_DIR_NAME) -> folium.Map:
    """``map_from_run`` with the area's own streets drawn as an offline basemap when its street graph exists, the
    settings' minimum unmet demand of a gap (``min_gap_demand``) and local time zone."""
    from yizhan.coverage.streets import street_lines

    return map_from_run(run, asset_prefix=asset_prefix, streets=street_lines(run.area, settings),
                        min_gap_demand=settings.min_gap_demand, timezone=settings.timezone)
