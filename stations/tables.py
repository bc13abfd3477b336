"""Reading the rows of a table file (CSV, XLSX, GeoJSON) as text, before any field is checked.

What a clerk's file may hold and how it is read:

- CSV in UTF-8, GBK/GB 18030 or Big5, separated by commas, tabs, semicolons or bars: the encoding and the
  separator under which a header row with known column names appears are used.
- Title rows above the header (a merged title cell saved as CSV): the header is the first of the first
  ``HEADER_SEARCH_ROWS`` rows with known column names, when every row above it has at most one filled cell.
- A row with more or fewer fields than the header is refused by number (no silent shift of columns).
- XLSX: every sheet with known headers is read (the others must be empty); formulas are read by their stored
  results, a formula without one is refused by cell. The unpacked size and the row count are checked against
  ``ImportLimits`` before a sheet is parsed (decompression bombs).
- GeoJSON: Point features only; a ``crs`` member is honoured when it names a CRS pyproj knows.

Row numbers are those a spreadsheet shows (the first line is row 1); GeoJSON features count from 1.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from yizhan.errors import ImportCancelled, ImportRejected, InvalidInput, RowProblem
from yizhan.settings import DEFAULT_MAX_IMPORT_ROWS, DEFAULT_MAX_UNCOMPRESSED_MB, Settings, get_settings

HeaderScore = Callable[[Sequence[str]], int]
"""How many cells of a row name a known column."""
HEADER_SEARCH_ROWS = 10
"""The header is looked for among this many first rows."""
MAX_COLUMNS = 200
"""Widest sheet read, columns: a registry has about a dozen."""
CHUNK_ROWS = 100_000
"""CSV records turned into compact text columns at a time (memory: never a Python string per cell of the file)."""
SEPARATORS = (",", "\t", ";", "|")
ENCODINGS = ("utf-8-sig", "gb18030", "big5")
SEPARATOR_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "bar"}
_MB = 1024 * 1024
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")
WGS84_NAMES = {"EPSG:4326", "OGC:CRS84", "URN:OGC:DEF:CRS:OGC:1.3:CRS84", "URN:OGC:DEF:CRS:EPSG::4326"}


Cancelled = Callable[[], bool]
"""``cancelled()``: whether the caller of an import has gone away (``threading.Event().is_set``); asked between
the chunks an import reads, checks and copies; the import then stops with ``ImportCancelled``, storing nothing."""


def stop_if_cancelled(cancelled: Cancelled | None, source: str) -> None:
    """Raise ``ImportCancelled`` (naming the file ``source``) when ``cancelled`` says the caller has gone away."""
    if cancelled is not None and cancelled():
        raise ImportCancelled(f"{source}: 导入已取消，未保存任何内容 / the import was cancelled (the client went away "
                              f"or the server is stopping); nothing was stored")


@dataclass(frozen=True)
class ImportLimits:
    """What an import reads at most: ``max_rows`` rows of a file or sheet, ``max_uncompressed_mb`` MB unpacked
    (all members of an XLSX archive together). Defaults from ``settings``."""

    max_rows: int = DEFAULT_MAX_IMPORT_ROWS
    max_uncompressed_mb: float = DEFAULT_MAX_UNCOMPRESSED_MB

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        """The limits ``YIZHAN_MAX_IMPORT_ROWS`` and ``YIZHAN_MAX_UNCOMPRESSED_MB`` set."""
        return cls(settings.max_import_rows, settings.max_uncompressed_mb)


@dataclass
class Part:
    """The rows of one CSV file, sheet or FeatureCollection: text cells under its own headers (unique names as
    pandas gives them: ``Unnamed: N`` for a blank header, ``X.1`` for a repeated one) and ``_row``, the row
    number of each. ``sheet`` names an XLSX sheet."""

    frame: pd.DataFrame
    sheet: str | None = None


@dataclass
class Table:
    """A file's parts (several for a workbook with several registry sheets) and, when no header row was found,
    ``hint``: what the file looks like instead (another separator, garbled text), for the message."""

    parts: list[Part]
    hint: str = ""
    sheets: list[str] = field(default_factory=list)
    marked_text: bool = False
    """CSV: a text cell may carry the apostrophe that keeps it from being a formula (``stations.cells``)."""


def read_file(path: Path | str | None, *, data: bytes | None = None, filename: str | None = None,
              score: HeaderScore, limits: ImportLimits | None = None, cancelled: Cancelled | None = None) -> Table:
    """The rows of a CSV, XLSX or GeoJSON file. ``data`` gives the bytes of an upload, ``filename`` then its
    type; ``score`` tells a header row; ``limits`` default to the process's settings (``YIZHAN_MAX_IMPORT_ROWS``,
    ``YIZHAN_MAX_UNCOMPRESSED_MB``): the API passes those of its app's own settings (``ImportLimits.from_settings``).
    InvalidInput (or ImportRejected, rows named) says what is wrong. ``cancelled`` is asked before the file is
    parsed and every ``CHUNK_ROWS`` rows of a CSV file or sheet (``ImportCancelled``)."""
    limits = limits or ImportLimits.from_settings(get_settings())
    name = filename or str(path)
    source = Path(name).name
    suffix = Path(name).suffix.lower()
    try:
        raw = data if data is not None else Path(str(path)).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot read the file ({exc.strerror})") from exc
    if not raw.strip():
        raise InvalidInput(f"{source}: the file is empty")
    stop_if_cancelled(cancelled, source)
    if suffix in {".csv", ".txt", ".tsv"}:
        return _read_csv(raw, source, score, limits, cancelled)
    if suffix in {".xlsx", ".xlsm"}:
        return _read_xlsx(raw, source, score, limits, cancelled)
    if suffix in {".geojson", ".json"}:
        return Table([Part(_read_geojson(raw, source, limits))])
    raise InvalidInput(f"{source}: unsupported file type {suffix or '(none)'}; expected .csv, .xlsx or .geojson")


def unique_headers(cells: Sequence[str]) -> list[str]:
    """Column names as pandas gives them: ``Unnamed: N`` for a blank one, ``X.1``, ``X.2`` for repeats."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, c in enumerate(cells):
        c = c.strip() or f"Unnamed: {i}"
        if c in seen:
            seen[c] += 1
            c = f"{c}.{seen[c]}"
        seen.setdefault(c, 0)
        names.append(c)
    return names


def find_header(rows: Sequence[Sequence[str]], score: HeaderScore) -> int | None:
    """Index of the header among the first rows: the first with at least two known names, below rows holding
    at most one filled cell each (titles, notes). None when there is none."""
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if score(row) >= 2:
            return i
        if sum(1 for c in row if str(c).strip()) > 1:
            return None
    return None


def _frame(names: list[str], rows: list[list[str]], numbers: Iterable[int]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=names, dtype=str) if rows else pd.DataFrame(columns=names, dtype=str)
    df["_row"] = np.fromiter(numbers, dtype=np.int64, count=len(rows))
    return df


# --- CSV -----------------------------------------------------------------------------------------------------

def _encodings(raw: bytes) -> Iterator[tuple[str, str]]:
    """Each of ``ENCODINGS`` that ``raw`` is valid in, with the text of its first 64 kB (a whole decoded file is
    not kept: the rows are decoded as they are read)."""
    for enc in ENCODINGS:
        try:
            raw.decode(enc)
        except UnicodeDecodeError:
            continue
        yield enc, raw[:65536].decode(enc, errors="ignore")


def _head_rows(text: str, sep: str) -> list[list[str]]:
    head = text[:65536]
    try:
        return list(itertools.islice(csv.reader(io.StringIO(head), delimiter=sep, skipinitialspace=True),
                                     HEADER_SEARCH_ROWS))
    except csv.Error:
        return []


def _garbled_hint(cells: Sequence[str], score: HeaderScore) -> str:
    """What a header row of unknown names looks like instead: text read in the wrong encoding and saved again."""
    for wrong, right in (("cp1252", "utf-8"), ("latin-1", "utf-8"), ("gb18030", "utf-8"), ("gb18030", "big5")):
        try:
            repaired = [c.encode(wrong).decode(right) for c in cells]
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if score(repaired) >= 2:
            return (f"the column names look garbled ({', '.join(cells[:4])} ...): the text is {right} that was "
                    f"read as {wrong} and saved again; open the original file and save it as CSV UTF-8")
    return ""


def _read_csv(raw: bytes, source: str, score: HeaderScore, limits: ImportLimits,
              cancelled: Cancelled | None = None) -> Table:
    chosen: tuple[str, str, int] | None = None
    fallback: tuple[str, str] | None = None
    for enc, sample in _encodings(raw):
        fallback = fallback or (enc, sample)
        for sep in SEPARATORS:
            header = find_header(_head_rows(sample, sep), score)
            if header is not None:
                chosen = (enc, sep, header)
                break
        if chosen is not None:
            break
    if fallback is None:
        raise InvalidInput(f"{source}: the file is neither UTF-8 nor GBK text; save it as CSV UTF-8")
    hint = ""
    if chosen is None:  # read as commas and say what the file looks like
        lines = fallback[1].lstrip("\ufeff").splitlines()
        first_line = lines[0] if lines else ""
        counts = {s: first_line.count(s) for s in SEPARATORS}
        likely = max(counts, key=lambda s: counts[s])
        if likely != "," and counts[likely] > counts[","]:
            hint = (f"this file looks {SEPARATOR_NAMES[likely]}-separated ({counts[likely]} {SEPARATOR_NAMES[likely]}s "
                    f"in its first line), but none of its column names is known")
        else:
            head_rows = _head_rows(fallback[1], ",")
            hint = _garbled_hint(head_rows[0], score) if head_rows else ""
        chosen = (fallback[0], ",", 0)
    enc, sep, header = chosen
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(raw), encoding=enc, newline=""), delimiter=sep,
                        skipinitialspace=True)
    try:
        for _ in range(header):  # title rows
            next(reader)
        head = next(reader, None)
        if head is None:
            raise InvalidInput(f"{source}: the file is empty")
        header_row = header + 1
        names = unique_headers(head)
        width = len(head)
        frames: list[pd.DataFrame] = []
        problems: list[RowProblem] = []
        count = 0
        while records := list(itertools.islice(reader, CHUNK_ROWS)):
            stop_if_cancelled(cancelled, source)
            first = header_row + 1 + count
            count += len(records)
            if count > limits.max_rows:
                raise InvalidInput(f"{source}: more than {limits.max_rows} rows, the limit of one import "
                                   f"(YIZHAN_MAX_IMPORT_ROWS); split the file")
            for i in [i for i, rec in enumerate(records) if len(rec) != width]:
                if any(c.strip() for c in records[i]):
                    problems.append(RowProblem(
                        first + i, "fields", len(records[i]),
                        f"{width} fields like the header row (row {header_row}); a value that contains a "
                        f"{SEPARATOR_NAMES[sep]} ({sep!r}) must be in double quotes"))
                else:
                    records[i] = [""] * width  # a blank line
            if not problems:  # compact text columns a chunk at a time, not a list of every row's strings
                frames.append(_frame(names, records, range(first, first + len(records))))
    except csv.Error as exc:
        raise InvalidInput(f"{source}: not a well-formed CSV file (line {reader.line_num}): {exc}") from exc
    if problems:
        raise ImportRejected(source, problems)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames[0] if frames
                                                                           else _frame(names, [], []))
    return Table([Part(frame)], hint=hint, marked_text=True)


# --- XLSX ----------------------------------------------------------------------------------------------------

def _cell_text(v: object) -> str:
    """A cell value as the text a CSV of it would hold (whole numbers without ``.0``)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).upper()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()
    return str(v)


def _check_archive(raw: bytes, source: str, limits: ImportLimits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"{source}: not a readable XLSX workbook (not a ZIP archive); save it again as "
                           f"Excel Workbook (.xlsx)") from exc
    unpacked = sum(i.file_size for i in archive.infolist())
    if unpacked > limits.max_uncompressed_mb * _MB:
        raise InvalidInput(f"{source}: the workbook unpacks to {unpacked / _MB:,.0f} MB, more than the limit of "
                           f"{limits.max_uncompressed_mb:g} MB (YIZHAN_MAX_UNCOMPRESSED_MB); split it or save it "
                           f"as CSV")
    return archive


def _has_formulas(archive: zipfile.ZipFile) -> bool:
    """Whether any worksheet holds a formula cell (read in chunks; nothing is kept)."""
    for name in archive.namelist():
        if not _WORKSHEET.fullmatch(name):
            continue
        with archive.open(name) as member:
            tail = b""
            while chunk := member.read(1 << 20):
                if _FORMULA_TAG.search(tail + chunk):
                    return True
                tail = chunk[-16:]
    return False


def _sheet_rows(ws: object, source: str, limits: ImportLimits,
                cancelled: Cancelled | None = None) -> Iterator[list[str]]:
    """The rows of a read-only sheet as text cells without trailing blanks, one at a time; InvalidInput when the
    sheet declares or holds more rows than ``limits`` allow, or is wider than ``MAX_COLUMNS``."""
    title = getattr(ws, "title", "?")
    declared_rows = getattr(ws, "max_row", None) or 0
    declared_cols = getattr(ws, "max_column", None) or 0
    if declared_rows > limits.max_rows + HEADER_SEARCH_ROWS:
        raise InvalidInput(f"{source}: sheet {title!r} has {declared_rows:,} rows, more than the limit of "
                           f"{limits.max_rows:,} (YIZHAN_MAX_IMPORT_ROWS); split the workbook")
    if declared_cols > MAX_COLUMNS:
        raise InvalidInput(f"{source}: sheet {title!r} is {declared_cols:,} columns wide; a registry sheet has at "
                           f"most {MAX_COLUMNS}; delete the columns beyond the data")
    ws.reset_dimensions()  # type: ignore[attr-defined]  # a wrong <dimension> would cut the rows
    for n, values in enumerate(ws.iter_rows(max_col=MAX_COLUMNS, values_only=True)):  # type: ignore[attr-defined]
        if n % CHUNK_ROWS == 0:
            stop_if_cancelled(cancelled, source)
        if n > limits.max_rows + HEADER_SEARCH_ROWS:
            raise InvalidInput(f"{source}: sheet {title!r} has more than {limits.max_rows:,} rows, the limit "
                               f"(YIZHAN_MAX_IMPORT_ROWS); split the workbook")
        cells = [_cell_text(v) for v in values]
        while cells and cells[-1] == "":
            cells.pop()
        yield cells


def _body_frames(header_cells: list[str], rows: Iterable[list[str]], first_row: int) -> Iterator[pd.DataFrame]:
    """The rows below a sheet's header as frames of ``CHUNK_ROWS`` rows, numbered from ``first_row``; values right
    of the last header get columns of their own with blank headers (``Unnamed: N``)."""
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        width = max(len(header_cells), *(len(r) for r in chunk))
        names = unique_headers(header_cells + [""] * (width - len(header_cells)))
        yield _frame(names, [r + [""] * (width - len(r)) for r in chunk], range(first_row, first_row + len(chunk)))
        first_row += len(chunk)


def _formula_problems(raw: bytes, title: str, frame: pd.DataFrame) -> list[RowProblem]:
    """Formula cells of a sheet without a stored result (a file written by a program, never opened in Excel):
    ``frame`` holds the sheet's rows as read (stored results), numbered by ``_row``."""
    names = [c for c in frame.columns if c != "_row"]
    where = {int(r): i for i, r in enumerate(frame["_row"])}
    book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
    try:
        ws = book[title]
        ws.reset_dimensions()
        problems = []
        for n, values in enumerate(ws.iter_rows(max_col=len(names), values_only=True), start=1):
            i = where.get(n)
            if i is None:
                continue
            for j, v in enumerate(values):
                if isinstance(v, str) and v.startswith("=") and frame[names[j]].iat[i] == "":
                    problems.append(RowProblem(
                        n, names[j], v, "a value, but the formula has no stored result; open the file in Excel "
                        "(or LibreOffice) and save it, so the values are stored, then import it again"))
        return problems
    finally:
        book.close()


def _read_xlsx(raw: bytes, source: str, score: HeaderScore, limits: ImportLimits,
               cancelled: Cancelled | None = None) -> Table:
    archive = _check_archive(raw, source, limits)
    formulas = _has_formulas(archive)
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise InvalidInput(f"{source}: not a readable XLSX workbook: {exc}") from exc
    parts: list[Part] = []
    others: list[str] = []
    problems: list[RowProblem] = []
    first_rows: list[list[str]] = []
    try:
        for ws in book.worksheets:
            rows = _sheet_rows(ws, source, limits, cancelled)
            top = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
            header = find_header(top, score)
            if header is None:
                if any(any(c.strip() for c in r) for r in itertools.chain(top, rows)):
                    others.append(ws.title)
                    first_rows = first_rows or top[:1]
                continue  # else an empty sheet
            body = _body_frames(top[header], itertools.chain(top[header + 1:], rows), header + 2)
            frames = list(body)
            frame = (pd.concat(frames, ignore_index=True).fillna("") if len(frames) > 1
                     else frames[0] if frames else _frame(unique_headers(top[header]), [], []))
            if formulas:
                problems += _formula_problems(raw, ws.title, frame)
            parts.append(Part(frame, ws.title))
    except (InvalidInput, ImportRejected, ImportCancelled):
        raise
    except Exception as exc:
        raise InvalidInput(f"{source}: not a readable XLSX workbook: {exc}") from exc
    finally:
        book.close()
    if parts and others:
        raise InvalidInput(f"{source}: sheet(s) {', '.join(map(repr, others))} hold data but not the registry's "
                           f"column headers, and would be left out (read: {', '.join(p.sheet or '' for p in parts)})"
                           f"; nothing was imported. Give those sheets the headers, or delete them")
    if problems:
        raise ImportRejected(source, problems)
    if not parts and not others:
        raise InvalidInput(f"{source}: every sheet of the workbook is empty")
    if not parts:  # no sheet with known headers: the first sheet's own, for the message
        head = first_rows[0] if first_rows else []
        return Table([Part(_frame(unique_headers(head), [], []), others[0] if others else None)],
                     hint=_garbled_hint(head, score))
    return Table(parts, sheets=[p.sheet or "" for p in parts])


# --- GeoJSON -------------------------------------------------------------------------------------------------

def _crs_transformer(doc: dict[str, object], source: str) -> Transformer | None:
    """A transformer to WGS 84 lon/lat for a ``crs`` member of an older GeoJSON (2008), None for WGS 84."""
    crs = doc.get("crs")
    if crs is None:
        return None
    props = crs.get("properties") if isinstance(crs, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    if not isinstance(name, str):
        raise InvalidInput(f"{source}: the 'crs' member {json.dumps(crs)[:80]} names no coordinate system; give "
                           f"the coordinates in WGS 84 longitude, latitude (RFC 7946) and remove the 'crs' member")
    if name.upper() in WGS84_NAMES:
        return None
    try:
        known = CRS.from_user_input(name)
    except CRSError as exc:
        raise InvalidInput(f"{source}: crs {name!r} is not a coordinate system known here; give the coordinates "
                           f"in WGS 84 longitude, latitude (RFC 7946) and remove the 'crs' member") from exc
    return Transformer.from_crs(known, CRS.from_epsg(4326), always_xy=True)


def _read_geojson(raw: bytes, source: str, limits: ImportLimits) -> pd.DataFrame:
    enc = next((e for e, _ in _encodings(raw)), None)
    if enc is None:
        raise InvalidInput(f"{source}: the file is neither UTF-8 nor GBK text; save it as UTF-8")
    try:
        doc = json.loads(raw.decode(enc))
        # an unpaired \ud800-\udfff escape decodes to a lone surrogate, which no UTF-8 text (nor the database) holds
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:  # before ValueError, its base class
        raise InvalidInput(f"{source}: not valid JSON text: a \\u escape makes a lone UTF-16 surrogate "
                           f"({exc.object[exc.start]!r}); save the file as UTF-8") from exc
    except ValueError as exc:  # JSONDecodeError, or a number too long to convert
        raise InvalidInput(f"{source}: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInput(f"{source}: not valid GeoJSON: arrays or objects nested too deeply") from exc
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(feats, list):
        raise InvalidInput(f"{source}: expected a GeoJSON FeatureCollection")
    if len(feats) > limits.max_rows:
        raise InvalidInput(f"{source}: {len(feats):,} features, more than the limit of {limits.max_rows:,} "
                           f"(YIZHAN_MAX_IMPORT_ROWS); split the file")
    transformer = _crs_transformer(doc, source)
    rows = []
    problems = []
    for i, f in enumerate(feats, start=1):
        if not isinstance(f, dict):
            raise InvalidInput(f"{source}: feature {i} is not a GeoJSON Feature object")
        props = f.get("properties") or {}
        geom = f.get("geometry") or {}
        if not isinstance(props, dict) or not isinstance(geom, dict):
            raise InvalidInput(f"{source}: feature {i}: 'properties' and 'geometry' must be JSON objects")
        row = {str(k): "" if v is None else (";".join(map(str, v)) if isinstance(v, list) else str(v))
               for k, v in props.items()}
        coords = geom.get("coordinates")
        if geom.get("type") != "Point":
            problems.append(RowProblem(i, "geometry", geom.get("type") or "(none)",
                                       "Point geometry (one station is one point; give the entrance's position)"))
        elif not (isinstance(coords, list) and len(coords) >= 2
                  and all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords[:2])):
            problems.append(RowProblem(i, "geometry", json.dumps(coords)[:60],
                                       "Point coordinates [longitude, latitude] as two numbers"))
        else:
            x, y = float(coords[0]), float(coords[1])
            if transformer is not None:
                x, y = transformer.transform(x, y)
            row["lon"], row["lat"] = (repr(x), repr(y)) if transformer is not None else (str(coords[0]),
                                                                                         str(coords[1]))
        if "id" not in row and f.get("id") is not None:
            row["id"] = str(f["id"])
        row["_row"] = str(i)
        rows.append(row)
    if problems:
        raise ImportRejected(source, problems)
    df = pd.DataFrame(rows, dtype=object).fillna("")
    df["_row"] = df["_row"].astype(np.int64) if len(df) else pd.Series(dtype=np.int64)
    return df
