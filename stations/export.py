"""Writing the registry back out in the import formats, in the registry's language: CSV (UTF-8 with BOM, opens in
Excel), XLSX, GeoJSON, and GeoPackage (a point layer for GIS).

A table in a language (``table_from_frame``, ``stations_table``): ``zh`` gives the importer's own Chinese
headers (编号, 名称, 类型, 经度, 纬度, 承办单位, 承办单位名称, 地址, 街道, 设施, 开放时间, 开放时间说明, 座位数,
星级, 状态, 联系电话) and the vocabulary's Chinese labels for codes (类型 大型驿站, 承办单位 加油站, 设施 饮水;充电,
状态 运营); ``en`` the English column names and the stored codes (large, petrol_station, drinking_water;charging,
active). Every format has the same columns, all of them in every file, and the same values, and the import reads
each of them back to the values it was written from.
Opening hours are the OpenStreetMap rule the importer reads back (开放时间 / opening_hours) and, beside it, the
hours as written when they were not that rule (开放时间说明 / opening_hours_text).

No text becomes a live formula: CSV text cells that a spreadsheet would run get a leading apostrophe, which the
import takes off again; XLSX text cells are text cells (``stations.cells``). Each file is written whole or not at
all (``outputs.replacing``)."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point
from sqlalchemy import Connection

from yizhan.db.models import SRID
from yizhan.errors import InvalidInput
from yizhan.outputs import replacing
from yizhan.stations import vocab
from yizhan.stations.cells import csv_text, keep_text
from yizhan.stations.registry import EXPORT_COLUMNS, check_lang, export_frame, registry_lang

FORMATS = (".csv", ".xlsx", ".geojson", ".gpkg")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3"}
"""The media type of each export format (by its suffix without the dot), for a download."""

HEADERS: dict[str, dict[str, str]] = {
    "en": {c: c for c in EXPORT_COLUMNS},
    "zh": {"id": "编号", "name": "名称", "kind": "类型", "lon": "经度", "lat": "纬度", "host": "承办单位",
           "host_name": "承办单位名称", "address": "地址", "township": "街道", "amenities": "设施",
           "opening_hours": "开放时间", "opening_hours_text": "开放时间说明", "seats": "座位数", "stars": "星级",
           "status": "状态", "phone": "联系电话"},
}
"""The header of each export column (``registry.EXPORT_COLUMNS``) by language: the names the importer reads."""
CODED = {"kind": "kind", "host": "host", "status": "status"}
"""Columns holding one vocabulary code, and their vocabulary field (``vocab.label``); ``amenities`` holds several."""
SHEET_NAMES = {"en": "stations", "zh": "站点"}
"""The XLSX sheet (and GeoPackage layer) of an export, by language."""


def _clean(v: object) -> object:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v


def _labels(field: str, code: object) -> object:
    return vocab.label(field, code) if isinstance(code, str) and code else code


def table_from_frame(df: pd.DataFrame, *, lang: str) -> pd.DataFrame:
    """``df`` (``registry.export_frame``: English column names, stored codes) as a table in ``lang``: ``zh``
    Chinese headers and the codes' Chinese labels (amenities joined by ``;``), ``en`` as it is. Columns of
    ``df`` outside ``EXPORT_COLUMNS`` keep their names and values. ``InvalidInput`` for another ``lang``."""
    check_lang(lang)
    if lang == "en":
        return df.copy()
    out = df.copy()
    for col, field in CODED.items():
        if col in out.columns:
            out[col] = out[col].map(lambda v, f=field: _labels(f, v))
    if "amenities" in out.columns:
        out["amenities"] = out["amenities"].map(
            lambda v: ";".join(vocab.label("amenity", a) for a in v.split(";") if a) if isinstance(v, str) else v)
    return out.rename(columns=HEADERS[lang])


def stations_table(conn: Connection, area_id: int, *, lang: str | None = None) -> pd.DataFrame:
    """The registry's stations of an area as a table in ``lang`` (``zh`` or ``en``; by default the area's
    ``registry_lang``, the language of its last import): the columns and values of every export
    (``table_from_frame``), ordered by id; lon/lat WGS 84 degrees (7 decimals)."""
    lang = registry_lang(conn, area_id) if lang is None else check_lang(lang)
    return table_from_frame(export_frame(conn, area_id), lang=lang)


def geojson_from_frame(df: pd.DataFrame, *, lang: str = "en") -> dict[str, Any]:
    """RFC 7946 FeatureCollection (WGS 84, lon/lat) of ``df`` (``registry.export_frame`` layout) in ``lang``: the
    point from ``lon``/``lat``, the other columns as properties under the language's headers, amenities a list.
    The Feature's ``id`` member (the registry id) is written in English only: a Chinese file's id is its 编号
    property, and the import would read an ``id`` member beside it as a second id column."""
    table = table_from_frame(df, lang=lang)
    head = HEADERS[lang]
    lon, lat, amen, ident = head["lon"], head["lat"], head["amenities"], head["id"]
    feats = []
    for rec in table.to_dict("records"):
        props = {k: _clean(v) for k, v in rec.items() if k not in (lon, lat)}
        if isinstance(props.get(amen), str):
            props[amen] = [a for a in str(props[amen]).split(";") if a]
        feat: dict[str, Any] = {"type": "Feature"}
        if lang == "en":
            feat["id"] = props.get(ident)
        feat["geometry"] = {"type": "Point", "coordinates": [float(rec[lon]), float(rec[lat])]}
        feat["properties"] = props
        feats.append(feat)
    return {"type": "FeatureCollection", "features": feats}


def geopackage_frame(df: pd.DataFrame, *, lang: str = "en") -> gpd.GeoDataFrame:
    """The GeoPackage layer of ``df`` (``registry.export_frame`` layout) in ``lang``: a point per station in
    EPSG:4326 (lon, lat) and the columns of the CSV as fields (lon/lat too), text fields as text, seats and
    stars as integers (null where empty)."""
    table = table_from_frame(df, lang=lang)
    head = HEADERS[lang]
    points = [Point(float(x), float(y)) for x, y in zip(df["lon"], df["lat"], strict=True)]
    gdf = gpd.GeoDataFrame(table, geometry=points, crs=SRID)
    for c in ("seats", "stars"):
        if head[c] in gdf.columns:
            gdf[head[c]] = gdf[head[c]].astype("Int64")
    return gdf


def render_stations(df: pd.DataFrame, fmt: str, *, lang: str = "en") -> bytes:
    """The bytes of an export file of ``df`` (``registry.export_frame`` layout) in format ``fmt`` (``csv``,
    ``xlsx``, ``geojson`` or ``gpkg``; ``MEDIA_TYPES``) and ``lang`` (``zh``: Chinese headers and labels; ``en``:
    English headers and codes): every format with the same columns (all of ``registry.EXPORT_COLUMNS``, empty
    ones too: one layout a clerk can fill in) and values. A GeoPackage is made in a temporary folder that is
    removed again."""
    if f".{fmt}" not in FORMATS:
        raise InvalidInput(f"format {fmt!r}: 不支持的导出格式，可用 {', '.join(FORMATS)} / unsupported export type; "
                           f"expected one of {', '.join(FORMATS)}")
    check_lang(lang)
    if fmt == "csv":
        return ("\ufeff" + csv_text(table_from_frame(df, lang=lang))).encode("utf-8")
    if fmt == "xlsx":
        buf = io.BytesIO()
        _write_xlsx(table_from_frame(df, lang=lang), buf, SHEET_NAMES[lang])
        return buf.getvalue()
    if fmt == "geojson":
        return json.dumps(geojson_from_frame(df, lang=lang), ensure_ascii=False, indent=1).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="yizhan-export-") as folder:
        gpkg = Path(folder) / "stations.gpkg"
        geopackage_frame(df, lang=lang).to_file(gpkg, driver="GPKG", layer=SHEET_NAMES[lang], engine="pyogrio")
        return gpkg.read_bytes()


def write_stations(df: pd.DataFrame, path: Path, *, lang: str = "en") -> Path:
    """Write ``df`` (``registry.export_frame`` layout) to ``path`` in ``lang`` (``zh``: Chinese headers and
    labels; ``en``: English headers and codes); the suffix picks the format (``FORMATS``; ``render_stations``).
    The file is made first, then written whole or not at all: a folder that cannot take it (full, read-only)
    raises ``OSError`` naming ``path`` and keeps an earlier file of that name (``outputs.replacing``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(f"{path.name}: 不支持的导出格式，可用 {', '.join(FORMATS)} / unsupported export type; "
                           f"expected one of {', '.join(FORMATS)}")
    data = render_stations(df, suffix[1:], lang=lang)
    with replacing(path, keep_suffix=True) as tmp:
        tmp.write_bytes(data)
    return path


def _write_xlsx(table: pd.DataFrame, target: Path | io.BytesIO, sheet: str) -> None:
    with pd.ExcelWriter(target, engine="openpyxl") as xw:
        table.to_excel(xw, index=False, sheet_name=sheet)
        ws = xw.sheets[sheet]
        keep_text(ws)
        for col, name in zip(ws.columns, table.columns, strict=True):
            width = max([len(str(name))] + [len(str(c.value or "")) for c in col[1:200]])
            ws.column_dimensions[col[0].column_letter].width = min(60, width * 1.6 + 2)
