"""The columns of a registry file: which header names which field, and a file read into rows under the canonical
column names (``registry_chunks``, a chunk at a time; ``read_registry``, all at once), before any value is checked
(``stations.importer``).

Columns (English or the Chinese headers of a union's spreadsheet):
``id 编号, name 名称, kind 类型, lon 经度, lat 纬度`` required; ``host 承办单位, host_name 承办单位名称, address 地址,
township 街道, amenities 设施 (separated by ;), opening_hours 开放时间, seats 座位数, stars 星级, status 状态, phone
联系电话, opening_hours_text 开放时间说明 (the hours as written, beside the rule, as exports write them)`` optional.
Layout and remark columns (序号, No., 备注, 说明) are left out with a note. Any other column is an error unless the
caller allows extra columns. The files themselves are read by ``stations.tables`` (separators, encodings, title rows,
sheets, size limits).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from yizhan.errors import InvalidInput
from yizhan.stations.cells import QUOTE, restore_text
from yizhan.stations.tables import Cancelled, ImportLimits, Part, read_file

COLUMNS = ["id", "name", "kind", "lon", "lat", "host", "address", "township", "amenities", "opening_hours",
           "seats", "stars", "status", "host_name", "phone", "opening_hours_text"]
REQUIRED = ["id", "name", "kind", "lon", "lat"]
CHINESE_HEADERS = {
    "编号": "id", "驿站编号": "id", "名称": "name", "驿站名称": "name", "类型": "kind", "驿站类型": "kind",
    "经度": "lon", "纬度": "lat", "承办单位": "host", "依托单位": "host", "类别": "host", "地址": "address",
    "街道": "township", "乡镇": "township", "街道乡镇": "township", "所属街道": "township", "所在街道": "township",
    "所属乡镇": "township", "设施": "amenities", "服务设施": "amenities",
    "开放时间": "opening_hours", "营业时间": "opening_hours", "服务时间": "opening_hours", "开放时段": "opening_hours",
    "座位数": "seats", "座位": "seats", "星级": "stars", "状态": "status",
    "承办单位名称": "host_name", "依托单位名称": "host_name", "单位名称": "host_name",
    "联系电话": "phone", "电话": "phone", "手机": "phone", "联系方式": "phone", "开放时间说明": "opening_hours_text",
}
TRADITIONAL_HEADERS = {
    "編號": "id", "驛站編號": "id", "名稱": "name", "驛站名稱": "name", "類型": "kind", "驛站類型": "kind",
    "經度": "lon", "緯度": "lat", "承辦單位": "host", "依託單位": "host", "類別": "host", "鄉鎮": "township",
    "街道鄉鎮": "township", "設施": "amenities", "服務設施": "amenities", "開放時間": "opening_hours",
    "座位數": "seats", "星級": "stars", "狀態": "status", "營業時間": "opening_hours", "服務時間": "opening_hours",
    "承辦單位名稱": "host_name", "依託單位名稱": "host_name", "單位名稱": "host_name", "聯繫電話": "phone",
    "電話": "phone", "聯繫方式": "phone", "開放時間說明": "opening_hours_text",
}
"""The same headers in traditional characters (a Big5 file from Hong Kong or Taiwan, a converted sheet)."""
ALIASES = {"longitude": "lon", "lng": "lon", "x": "lon", "latitude": "lat", "y": "lat", "external_id": "id",
           "hours": "opening_hours", "host_type": "host", "telephone": "phone", "tel": "phone"}
LAYOUT_COLUMNS = {"序号": "row numbers", "行号": "row numbers", "序": "row numbers", "no.": "row numbers",
                  "no": "row numbers", "序號": "row numbers", "行號": "row numbers",
                  "备注": "remarks", "说明": "remarks", "備註": "remarks", "說明": "remarks"}
"""Columns a clerk's sheet holds for its layout or for remarks, by header (lower case): left out with a note
(``layout_note``), never an unknown column."""
_LAYOUT_LABELS = {"row numbers": "序号列", "remarks": "备注列"}
_CJK = re.compile("[\u3400-\u9fff]")
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


def layout_note(header: str) -> str | None:
    """The note for a layout or remark column left out (``LAYOUT_COLUMNS``), Chinese first; None for another."""
    kind = LAYOUT_COLUMNS.get(header.strip().lower())
    if kind is None:
        return None
    return f"已忽略列 {header.strip()}（{_LAYOUT_LABELS[kind]}）/ left out column {header.strip()} ({kind})"


def read_table(path: Path | str | None, *, data: bytes | None = None,
               filename: str | None = None) -> tuple[pd.DataFrame, int]:
    """The rows of a CSV (UTF-8, GBK or Big5), XLSX or GeoJSON file, as strings under the file's own headers, and
    the number of its first row (the row below the header, 1 for GeoJSON features, whose Point coordinates become
    ``lon``, ``lat``); blank rows are left out. ``data`` gives the bytes of an upload, ``filename`` then its type.
    InvalidInput names the file and what is wrong with it (see ``tables``)."""
    table = read_file(path, data=data, filename=filename, score=header_score)
    frames = [p.frame for p in table.parts]
    df = pd.concat(frames, ignore_index=True).fillna("") if len(frames) > 1 else frames[0]
    cells = df.drop(columns="_row").fillna("").astype(str)
    df = df[(cells.apply(lambda c: c.str.strip()) != "").any(axis=1)] if len(df) else df
    first_row = int(df["_row"].iloc[0]) if len(df) else 2
    return df.drop(columns="_row").reset_index(drop=True), first_row


class RegistryChunks:
    """A registry file read a chunk at a time: iterating gives frames of at most ``tables.CHUNK_ROWS`` station
    rows under the canonical column names (``COLUMNS``, ``_row``, ``_sheet``: the sheet of each row, blank for CSV
    and GeoJSON), blank rows left out; each iteration reads the file again from its start (path or bytes) and
    gives the same frames. The header mapping is decided once per part (a CSV file, a sheet) as it begins.

    While and after an iteration: ``unknown`` (the unknown columns left out), ``notes`` (layout and remark
    columns left out, one line each: ``layout_note``), ``sheets`` (the sheets read), ``lang`` (``"zh"`` when most
    recognised headers are Chinese, else ``"en"``) and ``rows`` (station rows given).

    Raised while iterating: ``InvalidInput`` for a part whose columns clash or miss a required one (as it
    begins), and after the last chunk for unknown columns (unless ``ignore_unknown_columns``) or a file without
    station rows; ``ImportRejected`` and ``ImportCancelled`` from the reader (``tables.read_file``).
    """

    def __init__(self, path: Path | str | None, *, data: bytes | None = None, filename: str | None = None,
                 ignore_unknown_columns: bool = False, limits: ImportLimits | None = None,
                 cancelled: Cancelled | None = None, sheets: Sequence[str] | None = None) -> None:
        self.path, self.data, self.filename = path, data, filename
        self.ignore_unknown_columns = ignore_unknown_columns
        self.limits, self.cancelled, self.wanted = limits, cancelled, list(sheets or [])
        self.source = Path(filename or str(path)).name
        self.unknown: list[str] = []
        self.notes: list[str] = []
        self.sheets: list[str] = []
        self.lang = "en"
        self.rows = 0

    def __iter__(self) -> Iterator[pd.DataFrame]:
        table = read_file(self.path, data=self.data, filename=self.filename, score=header_score,
                          limits=self.limits, cancelled=self.cancelled, sheets=self.wanted)
        self.unknown, self.notes, self.sheets, self.rows = [], [], table.sheets, 0
        chinese = other = 0
        for part in table.parts:
            mapping, unknown, notes = _part_columns(part, self.source)
            chinese += sum(1 for c in mapping if _CJK.search(str(c)))
            other += sum(1 for c in mapping if not _CJK.search(str(c)))
            self.lang = "zh" if chinese > other else "en"
            self._add(unknown, notes)
            for chunk in part.chunks:
                df, blank_with_values = _canonical_chunk(chunk, mapping, part.sheet, table.marked_text)
                self._add(blank_with_values, [])
                if df.empty:
                    continue
                self.rows += len(df)
                df.attrs.update(sheets=list(self.sheets), lang=self.lang, notes=list(self.notes))
                yield df
        if self.unknown and not self.ignore_unknown_columns:
            raise InvalidInput(f"{self.source}: unknown column(s) {', '.join(map(repr, self.unknown))}; accepted "
                               f"columns: {accepted_columns()}. Rename or remove them, or import without them "
                               f"with --ignore-unknown-columns (API form field ignore_unknown_columns=true)")
        if self.rows == 0:
            raise InvalidInput(f"{self.source}: the file has a header but no station rows")

    def _add(self, unknown: list[str], notes: list[str]) -> None:
        self.unknown += [u for u in unknown if u not in self.unknown]
        self.notes += [n for n in notes if n not in self.notes]


def _part_columns(part: Part, source: str) -> tuple[dict[str, str], list[str], list[str]]:
    """How one part's headers map to the canonical columns, its unknown columns and the notes of its layout
    columns left out; InvalidInput when several columns name one field or a required one is missing."""
    where = f" (sheet {part.sheet!r})" if part.sheet else ""
    headers = list(part.headers)
    mapping = _header_map(headers)
    same: dict[str, list[str]] = {}
    for col, target in mapping.items():
        same.setdefault(target, []).append(str(col))
    clashes = [f"{' and '.join(cols)} are all {target!r}" for target, cols in same.items() if len(cols) > 1]
    unknown: list[str] = []
    notes: list[str] = []
    for col in headers:
        if col in mapping:
            continue
        key = str(col).strip()
        repeated = _REPEATED_HEADER.match(key)
        note = layout_note(repeated.group(1) if repeated and repeated.group(1) in headers else key)
        if note is not None:
            notes.append(note)
        elif repeated and repeated.group(1) in headers and repeated.group(1) in mapping:
            clashes.append(f"{repeated.group(1)!r} appears more than once")
        elif not _BLANK_HEADER.match(key):  # a blank header counts only with values (_canonical_chunk)
            unknown.append(key)
    if clashes:
        raise InvalidInput(f"{source}{where}: several columns name the same field ({'; '.join(clashes)}); "
                           f"keep one of each")
    missing = [c for c in REQUIRED if c not in mapping.values()]
    if missing:
        raise InvalidInput(f"{source}{where}: missing required column(s) {', '.join(missing)}; "
                           f"expected {', '.join(REQUIRED)} (or 编号, 名称, 类型, 经度, 纬度); "
                           f"found {headers}" + (f"; {part.hint}" if part.hint else ""))
    return mapping, unknown, notes


def _canonical_chunk(chunk: pd.DataFrame, mapping: dict[str, str], sheet: str | None,
                     marked_text: bool) -> tuple[pd.DataFrame, list[str]]:
    """One chunk of a part under the canonical columns, text stripped, marked text restored, numbers in ASCII,
    blank rows left out; and its columns with a blank header but values (``(no header, column N)``)."""
    blank_with_values = []
    for i, col in enumerate(c for c in chunk.columns if c != "_row"):
        if (col not in mapping and _BLANK_HEADER.match(str(col).strip())
                and (chunk[col].fillna("").astype(str).str.strip() != "").any()):
            blank_with_values.append(f"(no header, column {i + 1})")
    df = chunk[[*mapping, "_row"]].rename(columns=mapping)
    for c in COLUMNS:
        df[c] = df[c].fillna("").astype(str).str.strip() if c in df.columns else ""
    if marked_text:  # an export's '=..., '+..., '-..., '@... reads back as it was stored
        for c in COLUMNS:
            marked = df[c].str.startswith(QUOTE)
            if marked.any():
                df.loc[marked, c] = df.loc[marked, c].map(restore_text)
    for c in NUMERIC:
        df[c] = _ascii_number_text(df[c])
    df = df[[*COLUMNS, "_row"]]
    df = df[(df[COLUMNS] != "").any(axis=1)].reset_index(drop=True)  # blank spreadsheet lines
    df["_sheet"] = sheet or ""
    return df, blank_with_values


def registry_chunks(path: Path | str | None, *, data: bytes | None = None, filename: str | None = None,
                    ignore_unknown_columns: bool = False, limits: ImportLimits | None = None,
                    cancelled: Cancelled | None = None, sheets: Sequence[str] | None = None) -> RegistryChunks:
    """A registry file to read a chunk at a time (``RegistryChunks``); nothing is read until it is iterated."""
    return RegistryChunks(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns,
                          limits=limits, cancelled=cancelled, sheets=sheets)


def read_registry(path: Path | str, *, data: bytes | None = None, filename: str | None = None,
                  ignore_unknown_columns: bool = False,
                  limits: ImportLimits | None = None,
                  cancelled: Cancelled | None = None,
                  sheets: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``frame_from_file``, also returning the names of the unknown columns that were left out: every chunk of
    ``registry_chunks`` in one frame (for small files; an import reads a chunk at a time).

    A column that is not one of ``COLUMNS``, ``CHINESE_HEADERS`` or ``ALIASES`` is an ``InvalidInput`` naming it
    unless ``ignore_unknown_columns``; layout and remark columns (``LAYOUT_COLUMNS``) are left out with a note
    (``attrs["notes"]``). Columns with an empty header and no values (trailing commas, Excel's empty columns) are
    dropped silently; with values they count as unknown. A workbook's sheets with the registry's headers (or the
    ``sheets`` named) are read one after the other (``_sheet`` names each row's sheet); ``sheets_read`` says
    which. ``attrs["lang"]`` is the language of the headers (``zh`` or ``en``). ``cancelled`` is asked while the
    file is read (``tables.read_file``: ``ImportCancelled``).
    """
    stream = registry_chunks(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns,
                             limits=limits, cancelled=cancelled, sheets=sheets)
    frames = list(stream)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df.attrs.update(sheets=list(stream.sheets), lang=stream.lang, notes=list(stream.notes))
    return df, list(stream.unknown)


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
