"""Gap reports of a stored run: CSV (opens in Excel, Chinese and English headers) and GeoJSON (RFC 7946)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from yizhan.coverage.runs import RunData

GAP_COLUMNS = {
    "rank": "排名 rank",
    "demand": "未覆盖需求 unmet_demand",
    "area_km2": "面积(平方公里) area_km2",
    "cells": "网格数 cells",
    "lon": "中心经度 lon",
    "lat": "中心纬度 lat",
    "nearest_station_id": "最近驿站编号 nearest_station_id",
    "nearest_station": "最近驿站 nearest_station",
    "nearest_distance_m": "最近距离(米) nearest_distance_m",
    "straight_distance_m": "直线距离(米) straight_distance_m",
}


def gaps_table(run: RunData) -> pd.DataFrame:
    """One row per gap, by rank; lon/lat (WGS 84) of a point inside the gap; distances in metres from the gap's
    closest cell to the nearest station: in the run's metric (network or straight) and in a straight line."""
    g = run.gaps
    return pd.DataFrame({
        "rank": g["rank"].astype(int),
        "demand": g["demand"].round(3),
        "area_km2": (g["area_m2"] / 1e6).round(4),
        "cells": g["cells"].astype(int),
        "lon": g["lon"].round(6),
        "lat": g["lat"].round(6),
        "nearest_station_id": g["nearest_station_id"],
        "nearest_station": g["nearest_station"],
        "nearest_distance_m": g["nearest_distance_m"].round(1),
        "straight_distance_m": g["straight_distance_m"].round(1),
    })


def gaps_csv(run: RunData) -> str:
    """The gap table as CSV text with bilingual headers, preceded by no BOM (add one when writing a file)."""
    return gaps_table(run).rename(columns=GAP_COLUMNS).to_csv(index=False)


def gaps_geojson(run: RunData) -> dict[str, Any]:
    """Gap polygons as an RFC 7946 FeatureCollection (WGS 84 lon/lat) with the run's summary as ``run``."""
    table = gaps_table(run)
    features = []
    for rec, geom in zip(table.to_dict("records"), run.gaps.geometry, strict=True):
        props = {k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in rec.items()}
        features.append({"type": "Feature", "geometry": geom.__geo_interface__, "properties": props})
    return {"type": "FeatureCollection", "run": run.summary, "features": features}


def write_gap_report(run: RunData, out_dir: Path) -> dict[str, Path]:
    """Write ``gaps_run<ID>.csv`` (UTF-8 with BOM for Excel) and ``gaps_run<ID>.geojson`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rid = run.summary["run_id"]
    csv_path = out_dir / f"gaps_run{rid}.csv"
    csv_path.write_text(gaps_csv(run), encoding="utf-8-sig")
    gj_path = out_dir / f"gaps_run{rid}.geojson"
    gj_path.write_text(json.dumps(gaps_geojson(run), ensure_ascii=False), encoding="utf-8")
    return {"csv": csv_path, "geojson": gj_path}
