"""Writing the registry back out in the import formats: CSV (UTF-8 with BOM, opens in Excel), XLSX, GeoJSON.

No text becomes a live formula: CSV text cells that a spreadsheet would run get a leading apostrophe, which the
import takes off again; XLSX text cells are text cells (``stations.cells``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from yizhan.errors import InvalidInput
from yizhan.stations.cells import csv_text, keep_text

FORMATS = (".csv", ".xlsx", ".geojson")


def _clean(v: object) -> object:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v


def geojson_from_frame(df: pd.DataFrame) -> dict:
    """RFC 7946 FeatureCollection (WGS 84, lon/lat) from a frame with ``lon``/``lat`` columns."""
    feats = []
    for rec in df.to_dict("records"):
        props = {k: _clean(v) for k, v in rec.items() if k not in ("lon", "lat")}
        amenities = props.get("amenities")
        if isinstance(amenities, str):
            props["amenities"] = [a for a in amenities.split(";") if a]
        feats.append({"type": "Feature", "id": props.get("id"),
                      "geometry": {"type": "Point", "coordinates": [float(rec["lon"]), float(rec["lat"])]},
                      "properties": props})
    return {"type": "FeatureCollection", "features": feats}


def write_stations(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` (``stations.registry.export_frame`` layout) to ``path``; the suffix picks the format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(f"{path.name}: unsupported export type; expected one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        path.write_bytes(("\ufeff" + csv_text(df)).encode("utf-8"))
    elif suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as xw:
            df.to_excel(xw, index=False, sheet_name="stations")
            ws = xw.sheets["stations"]
            keep_text(ws)
            for col, name in zip(ws.columns, df.columns, strict=True):
                width = max([len(str(name))] + [len(str(c.value or "")) for c in col[1:200]])
                ws.column_dimensions[col[0].column_letter].width = min(60, width * 1.6 + 2)
    else:
        path.write_text(json.dumps(geojson_from_frame(df), ensure_ascii=False, indent=1), encoding="utf-8")
    return path
