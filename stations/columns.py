"""The columns of a registry file: which header names which field, and a file read into rows under the canonical
column names (``read_registry``), before any value is checked (``stations.importer``).

Columns (English or the Chinese headers of a union's spreadsheet):
``id 编号, name 名称, kind 类型, lon 经度, lat 纬度`` required; ``host 承办单位, address 地址, township 街道,
amenities 设施 (separated by ;), opening_hours 开放时间, seats 座位数, stars 星级, status 状态`` optional. A column
that names none of them is an error unless the caller allows extra columns. The files themselves are read by
``stations.tables`` (separators, encodings, title rows, sheets, size limits).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from yizhan.errors import InvalidInput
from yizhan.stations.cells import QUOTE, restore_text
from yizhan.stations.tables import Cancelled, ImportLimits, Part, read_file

COLUMNS = ["id", "name", "kind", "lon", "lat", "host", "address", "township", "amenities", "opening_hours",
           "seats", "stars", "status"]
REQUIRED = ["id", "name", "kind", "lon", "lat"]
CHINESE_HEADERS = {
    "编号": "id", "驿站编号": "id", "名称": "name", "驿站名称": "name", "类型": "kind", "驿站类型": "kind",
    "经度": "lon", "纬度": "lat", "承办单位": "host", "依托单位": "host", "类别": "host", "地址": "address",
    "街道": "township", "乡镇": "township", "街道乡镇": "township", "设施": "amenities", "服务设施": "amenities",
    "开放时间": "opening_hours", "座位数": "seats", "座位": "seats", "星级": "stars", "状态": "status",
}
TRADITIONAL_HEADERS = {
    "編號": "id", "驛站編號": "id", "名稱": "name", "驛站名稱": "name", "類型": "kind", "驛站類型": "kind",
    "經度": "lon", "緯度": "lat", "承辦單位": "host", "依託單位": "host", "類別": "host", "鄉鎮": "township",
    "街道鄉鎮": "township", "設施": "amenities", "服務設施": "amenities", "開放時間": "opening_hours",
    "座位數": "seats", "星級": "stars", "狀態": "status",
}
"""The same headers in traditional characters (a Big5 file from Hong Kong or Taiwan, a converted sheet)."""
ALIASES = {"longitude": "lon", "lng": "lon", "x": "lon", "latitude": "lat", "y": "lat", "external_id": "id",
           "hours": "opening_hours", "host_type": "host"}
# pandas names a column with an empty header "Unnamed: N", and the second, third... of a repeated header "X.1", "X.2"
_BLANK_HEADER = re.compile(r"^(Unnamed: \d+(\.\d+)?)?$")
_REPEATED_HEADER = re.compile(r"^(.+)\.(\d+)$")
NUMERIC = ("lon", "lat", "seats", "stars")
"""The numeric fields: full-width forms (``１１６．３２``, typed in a Chinese keyboard's full-width mode) are read as
the ASCII characters they stand for (Unicode NFKC); anything but a plain decimal number is refused by name."""
_MINUS = str.maketrans({"\u2212": "-"})  # MINUS SIGN, which NFKC keeps


def _header_map(columns: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for c in columns:
        key = str(c).strip()
        low = key.lower()
        target = (CHINESE_HEADERS.get(key) or TRADITIONAL_HEADERS.get(key)
                  or (low if low in COLUMNS else ALIASES.get(low)))
        if target:
            mapping[c] = target
    return mapping


def accepted_columns() -> str:
    """The column names the importer knows, for messages."""
    return (f"{', '.join(COLUMNS)}; or the Chinese headers {', '.join(CHINESE_HEADERS)}; "
            f"or the aliases {', '.join(ALIASES)}")


def frame_from_file(path: Path | str, *, data: bytes | None = None, filename: str | None = None,
                    ignore_unknown_columns: bool = False) -> pd.DataFrame:
    """Read a registry file into a string DataFrame with canonical column names and a ``_row`` number.

    ``data`` lets a caller pass the bytes of an uploaded file; ``filename`` then gives its type.
    Row numbers are those a spreadsheet shows (the first line is row 1); GeoJSON features count from 1.
    See ``read_registry`` for unknown columns.
    """
    return read_registry(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns)[0]


def header_score(cells: Sequence[str]) -> int:
    """How many of ``cells`` name a registry column (a header row names two or more)."""
    return len(_header_map([str(c) for c in cells]))


def read_table(path: Path | str | None, *, data: bytes | None = None,
               filename: str | None = None) -> tuple[pd.DataFrame, int]:
    """The rows of a CSV (UTF-8, GBK or Big5), XLSX or GeoJSON file, as strings under the file's own headers, and
    the number of its first row (the row below the header, 1 for GeoJSON features, whose Point coordinates become
    ``lon``, ``lat``); blank rows are left out. ``data`` gives the bytes of an upload, ``filename`` then its type.
    InvalidInput names the file and what is wrong with it (see ``tables``)."""
    table = read_file(path, data=data, filename=filename, score=header_score)
    df = pd.concat([p.frame for p in table.parts], ignore_index=True) if len(table.parts) > 1 else table.parts[0].frame
    cells = df.drop(columns="_row").fillna("").astype(str)
    df = df[(cells.apply(lambda c: c.str.strip()) != "").any(axis=1)] if len(df) else df
    first_row = int(df["_row"].iloc[0]) if len(df) else 2
    return df.drop(columns="_row").reset_index(drop=True), first_row


def _canonical_part(part: Part, source: str, hint: str) -> tuple[pd.DataFrame, list[str]]:
    """One part of a file (a CSV, a sheet) under the canonical column names, and its unknown columns."""
    df = part.frame
    where = f" (sheet {part.sheet!r})" if part.sheet else ""
    headers = [c for c in df.columns if c != "_row"]
    mapping = _header_map(headers)
    same: dict[str, list[str]] = {}
    for col, target in mapping.items():
        same.setdefault(target, []).append(str(col))
    clashes = [f"{' and '.join(cols)} are all {target!r}" for target, cols in same.items() if len(cols) > 1]
    names = [str(c) for c in headers]
    unknown: list[str] = []
    for i, col in enumerate(headers):
        if col in mapping:
            continue
        key = str(col).strip()
        repeated = _REPEATED_HEADER.match(key)
        if repeated and repeated.group(1) in names and repeated.group(1) in mapping:
            clashes.append(f"{repeated.group(1)!r} appears more than once")
        elif _BLANK_HEADER.match(key):
            values = df[col].fillna("").astype(str).str.strip()
            if (values != "").any():
                unknown.append(f"(no header, column {i + 1})")
        else:
            unknown.append(key)
    if clashes:
        raise InvalidInput(f"{source}{where}: several columns name the same field ({'; '.join(clashes)}); "
                           f"keep one of each")
    df = df.rename(columns=mapping)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InvalidInput(f"{source}{where}: missing required column(s) {', '.join(missing)}; "
                           f"expected {', '.join(REQUIRED)} (or 编号, 名称, 类型, 经度, 纬度); "
                           f"found {names}" + (f"; {hint}" if hint else ""))
    df = df[[c for c in [*COLUMNS, "_row"] if c in df.columns]].copy()
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df["_sheet"] = part.sheet or ""
    return df, unknown


def read_registry(path: Path | str, *, data: bytes | None = None, filename: str | None = None,
                  ignore_unknown_columns: bool = False,
                  limits: ImportLimits | None = None,
                  cancelled: Cancelled | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``frame_from_file``, also returning the names of the unknown columns that were left out.

    A column that is not one of ``COLUMNS``, ``CHINESE_HEADERS`` or ``ALIASES`` is an ``InvalidInput`` naming it
    unless ``ignore_unknown_columns``. Columns with an empty header and no values (trailing commas, Excel's
    empty columns) are dropped silently; with values they count as unknown. A workbook's sheets with the registry's
    headers are read one after the other (``_sheet`` names each row's sheet); ``sheets_read`` says which.
    ``cancelled`` is asked while the file is read (``tables.read_file``: ``ImportCancelled``).
    """
    source = Path(filename or str(path)).name
    table = read_file(path, data=data, filename=filename, score=header_score, limits=limits, cancelled=cancelled)
    frames, unknown = [], []
    for part in table.parts:
        df, more = _canonical_part(part, source, table.hint)
        frames.append(df)
        unknown += [u for u in more if u not in unknown]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if unknown and not ignore_unknown_columns:
        raise InvalidInput(f"{source}: unknown column(s) {', '.join(map(repr, unknown))}; accepted columns: "
                           f"{accepted_columns()}. Rename or remove them, or import without them with "
                           f"--ignore-unknown-columns (API form field ignore_unknown_columns=true)")
    df[COLUMNS] = df[COLUMNS].fillna("").astype(str).apply(lambda s: s.str.strip())
    if table.marked_text:  # an export's '=..., '+..., '-..., '@... reads back as it was stored
        for c in COLUMNS:
            marked = df[c].str.startswith(QUOTE)
            if marked.any():
                df.loc[marked, c] = df.loc[marked, c].map(restore_text)
    for c in NUMERIC:
        df[c] = _ascii_number_text(df[c])
    df = df[(df[COLUMNS] != "").any(axis=1)]  # blank spreadsheet lines
    if df.empty:
        raise InvalidInput(f"{source}: the file has a header but no station rows")
    df.attrs["sheets"] = table.sheets
    return df, unknown


def sheets_read(df: pd.DataFrame) -> list[str]:
    """The sheets of a workbook a ``read_registry`` frame was read from (empty for CSV and GeoJSON)."""
    return list(df.attrs.get("sheets", []))


def _ascii_number_text(values: pd.Series) -> pd.Series:
    """``values`` with full-width and other compatibility forms of digits, signs and points made ASCII (NFKC)."""
    plain = values.map(str.isascii).astype(bool)
    if plain.all():
        return values
    out = values.copy()
    out[~plain] = [unicodedata.normalize("NFKC", v).translate(_MINUS).strip() for v in values[~plain]]
    return out
