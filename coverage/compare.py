"""Two stored coverage runs of one area side by side: this month against last, straight line against along the
streets, before against after new stations.

``compare_runs`` reads both runs' summaries, their per-township figures (``run_units``) and their cells
(``run_cells``, joined by ``cell_key``) and gives:

- per township: demand and covered share (0–1) in each run and the change in percentage points;
- the cells with more orders covered in the later run than the earlier (``newly_covered``) and the reverse
  (``no_longer_covered``): a whole cell when measured on cell centres, the orders of its points that changed when
  measured on points, with their demand, as polygons in WGS 84 (EPSG:4326, lon/lat);
- notes, in Chinese and English, on what differs between the runs besides the stations (method, radius,
  demand layer), so a change is read for what it is.

Shares are 0–1, demand in the layer's own units (orders), the radius in metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from yizhan.coverage.runs import RunSummary, summary_of, units_table
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput

UNIT_COLUMNS = ["name", "demand_before", "share_before", "demand_after", "share_after", "change_pp"]
"""The columns of ``RunComparison.units``."""

_COVERED = "coalesce({0}.covered_weight, CASE WHEN {0}.covered THEN {0}.weight ELSE 0 END)"
"""A run cell's covered orders: its points' when measured on points, else all or nothing by its centre."""
_CHANGED_CELLS = f"""
    SELECT cell_key, abs(change) AS weight, change > 0 AS covered_after, geom
    FROM (SELECT b.cell_key, {_COVERED.format("b")} - {_COVERED.format("a")} AS change, b.geom
          FROM (SELECT * FROM run_cells_in_layer WHERE run_id = :before) a
          JOIN (SELECT * FROM run_cells_in_layer WHERE run_id = :after) b USING (cell_key)) c
    WHERE abs(change) > 1e-9
    ORDER BY weight DESC, cell_key"""
_UNMATCHED = """
    SELECT count(*) FILTER (WHERE a.cell_key IS NULL) AS only_after,
           count(*) FILTER (WHERE b.cell_key IS NULL) AS only_before
    FROM (SELECT cell_key FROM run_cells_in_layer WHERE run_id = :before) a
    FULL JOIN (SELECT cell_key FROM run_cells_in_layer WHERE run_id = :after) b USING (cell_key)"""


@dataclass(frozen=True)
class RunComparison:
    """Runs ``before`` and ``after`` (their summaries) side by side; see the module's docstring."""

    before: RunSummary
    after: RunSummary
    units: pd.DataFrame
    newly_covered: gpd.GeoDataFrame
    no_longer_covered: gpd.GeoDataFrame
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def change_pp(self) -> float:
        """The whole area's covered share, after minus before, in percentage points."""
        return round((self.after["covered_share"] - self.before["covered_share"]) * 100, 4)


def _method(s: RunSummary) -> tuple[str, str]:
    if s["mode"] == "network":
        how = {"walk": ("步行", "walking"), "bike": ("骑行", "cycling")}.get(str(s.get("profile")), ("", ""))
        return f"沿街道{how[0]}", f"along the streets, {how[1]}".rstrip(", ")
    return "直线", "straight line"


def _notes(before: RunSummary, after: RunSummary, only_before: int, only_after: int) -> list[tuple[str, str]]:
    notes = []
    mb, ma = _method(before), _method(after)
    if mb != ma:
        notes.append((f"方法不同：{mb[0]} → {ma[0]}", f"methods differ: {mb[1]} → {ma[1]}"))
    measured = {"points": ("订单点", "the order points"), "cells": ("网格中心", "the cell centres")}
    wb, wa = measured[before.get("measured", "cells")], measured[after.get("measured", "cells")]
    if wb != wa:
        notes.append((f"计算对象不同：{wb[0]} → {wa[0]}（覆盖率的变化部分来自计算方式）",
                      f"measured differently: {wb[1]} → {wa[1]} (part of the change comes from how it is measured)"))
    if before["radius_m"] != after["radius_m"]:
        notes.append((f"服务半径不同：{before['radius_m']:g} 米 → {after['radius_m']:g} 米",
                      f"radius differs: {before['radius_m']:g} m → {after['radius_m']:g} m"))
    if only_before or only_after:
        notes.append((f"需求图层不同：{only_before} 个格子只在前一次，{only_after} 个只在后一次（不计入变化）",
                      f"demand layers differ: {only_before} cells only in the earlier run, {only_after} only in "
                      "the later (left out of the change)"))
    elif not np.isclose(before["demand_total"], after["demand_total"]):
        notes.append((f"需求总量不同：{before['demand_total']:g} → {after['demand_total']:g}",
                      f"total demand differs: {before['demand_total']:g} → {after['demand_total']:g}"))
    return notes


def _units(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    cols = ["name", "demand", "covered_share"]
    both = before[cols].merge(after[cols], on="name", how="outer", suffixes=("_before", "_after"))
    both = both.rename(columns={"covered_share_before": "share_before", "covered_share_after": "share_after"})
    both["change_pp"] = ((both["share_after"] - both["share_before"]) * 100).round(4)
    return both[UNIT_COLUMNS].sort_values("name", kind="stable").reset_index(drop=True)


def runs_of_one_area(conn: Connection, before: int, after: int) -> tuple[RunSummary, RunSummary]:
    """The summaries of stored runs ``before`` and ``after``, checked to be comparable: NotFound (404) for a run that
    does not exist; InvalidInput (422) for runs of two different areas or a run compared with itself."""
    if before == after:
        raise InvalidInput(f"对比需要两次不同的分析 / compare two different runs (both are run {before})")
    sb, sa = summary_of(conn, before), summary_of(conn, after)
    if sb["area"] != sa["area"]:
        raise InvalidInput(f"两次分析不属于同一区域 / runs {before} and {after} are of different areas "
                           f"({sb['area']!r}, {sa['area']!r}); compare runs of one area")
    return sb, sa


def changed_cells(conn: Connection, before: int, after: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The cells with more orders covered in run ``after`` than in ``before`` (newly covered), and the reverse (no
    longer covered): ``cell_key``, ``weight`` (the orders gained or lost: a whole cell's by its centre, or those of
    its points that changed when measured on points) and the cell polygon in WGS 84, most demand first."""
    changed = gpd.read_postgis(text(_CHANGED_CELLS), conn, geom_col="geom", crs=SRID,
                               params={"before": before, "after": after}).rename_geometry("geometry")
    gained = changed["covered_after"].to_numpy(bool)
    keep = ["cell_key", "weight", "geometry"]
    return changed.loc[gained, keep].reset_index(drop=True), changed.loc[~gained, keep].reset_index(drop=True)


def compare_runs(engine: Engine, before: int, after: int) -> RunComparison:
    """Stored runs ``before`` and ``after`` side by side (see the module's docstring); the refusals of
    ``runs_of_one_area``."""
    with engine.connect() as conn:
        sb, sa = runs_of_one_area(conn, before, after)
        newly, lost = changed_cells(conn, before, after)
        unmatched = conn.execute(text(_UNMATCHED), {"before": before, "after": after}).one()
        units = _units(units_table(conn, before), units_table(conn, after))
    return RunComparison(sb, sa, units, newly, lost,
                         _notes(sb, sa, int(unmatched.only_before), int(unmatched.only_after)))
