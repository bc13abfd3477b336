"""Reading the rows of a table file (CSV, XLSX, GeoJSON) as text, before any field is checked, a chunk at a time.

What a clerk's file may hold and how it is read:

- CSV in UTF-8, GBK/GB 18030 or Big5, separated by commas, tabs, semicolons or bars: the separator under which a
  header row with known column names appears is used, and of the encodings the whole file is valid in, the one
  whose header row names the most known columns; when several tie (short GBK text can also be valid UTF-8), the
  one whose text is the more plausible (``implausible_characters``).
- Title rows above the header (a merged title cell saved as CSV): the header is the first of the first
  ``HEADER_SEARCH_ROWS`` rows with known column names, when every row above it has at most one filled cell.
- A row with more or fewer fields than the header is refused by number (no silent shift of columns).
- XLSX: every sheet with known headers is read (the others must be empty), or only the sheets named; formulas are
  read by their stored results, a formula without one is refused by cell. The unpacked size and the row count are
  checked against ``ImportLimits`` before a sheet is parsed (decompression bombs).
- GeoJSON: Point features only; a ``crs`` member is honoured when it names a CRS pyproj knows.

Memory: a file is never held as rows of Python strings. Each part (a CSV file, a sheet, a FeatureCollection) gives
its rows as frames of at most ``CHUNK_ROWS`` rows, read from the path (or the upload's bytes) while the caller
asks for them; reading the file again gives the same frames. Only a GeoJSON document is parsed whole.

Row numbers are those a spreadsheet shows (the first line is row 1); GeoJSON features count from 1.
"""

from __future__ import annotations

import codecs
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
from typing import IO, TYPE_CHECKING

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from yizhan.errors import ImportCancelled, ImportRejected, InvalidInput, RowProblem
from yizhan.settings import DEFAULT_MAX_IMPORT_ROWS, DEFAULT_MAX_UNCOMPRESSED_MB, Settings, get_settings

if TYPE_CHECKING:
    import openpyxl

HeaderScore = Callable[[Sequence[str]], int]
"""How many cells of a row name a known column."""
HEADER_SEARCH_ROWS = 10
"""The header is looked for among this many first rows."""
MAX_COLUMNS = 200
"""Widest sheet read, columns: a registry has about a dozen."""
CHUNK_ROWS = 50_000
"""Rows of a file turned into one frame of text columns at a time (memory: a chunk's strings, never the file's)."""
CANCEL_EVERY_ROWS = 2_000
"""``cancelled`` is asked every this many rows of a sheet and features of a GeoJSON file (a cheap call)."""
READ_BLOCK_BYTES = 1 << 20
"""Bytes of a file read at a time while its encodings are tested and its archive members scanned."""
SEPARATORS = (",", "\t", ";", "|")
ENCODINGS = ("utf-8-sig", "gb18030", "big5")
SEPARATOR_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "bar"}
_MB = 1024 * 1024
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")
WGS84_NAMES = {"EPSG:4326", "OGC:CRS84", "URN:OGC:DEF:CRS:OGC:1.3:CRS84", "URN:OGC:DEF:CRS:EPSG::4326"}
_COMMON_TEXT = re.compile(
    "[\t\n\r\x20-\x7e\u00b0\u00b7\u00d7\u2000-\u206f\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff"
    "\uff00-\uffef]")
_SUSPECT = re.compile("[\x80-\x9f\ufffd]")
"""C1 control characters and the replacement character: text decoded in the wrong encoding."""


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
    """The rows of one CSV file, sheet or FeatureCollection: ``headers``, its own column names (unique names as
    pandas gives them: ``Unnamed: N`` for a blank header, ``X.1`` for a repeated one), and ``chunks``, frames of
    at most ``CHUNK_ROWS`` rows of text cells under them plus ``_row``, the row number of each (a later frame of a
    sheet may hold more columns, ``Unnamed: N``, for values right of the last header). ``sheet`` names an XLSX
    sheet; ``hint`` says what a part without known headers looks like instead (another separator, garbled text).
    The chunks are read when asked for; a part's chunks are read before the next part is."""

    headers: list[str]
    chunks: Iterator[pd.DataFrame]
    sheet: str | None = None
    hint: str = ""

    @property
    def frame(self) -> pd.DataFrame:
        """All the part's rows in one frame (reads the remaining chunks)."""
        frames = list(self.chunks)
        if not frames:
            return _frame(self.headers, [], [])
        return pd.concat(frames, ignore_index=True).fillna("") if len(frames) > 1 else frames[0]


@dataclass
class Table:
    """A file's parts (several for a workbook with several registry sheets), read one after the other as the
    caller iterates ``parts``; problems of the whole file (a refused row, a sheet with data but no header) are
    raised when the iteration reaches them, at the latest after the last part. ``sheets`` lists the sheets read
    so far."""

    parts: Iterator[Part]
    sheets: list[str] = field(default_factory=list)
    marked_text: bool = False
    """CSV: a text cell may carry the apostrophe that keeps it from being a formula (``stations.cells``)."""


def read_file(path: Path | str | None, *, data: bytes | None = None, filename: str | None = None,
              score: HeaderScore, limits: ImportLimits | None = None, cancelled: Cancelled | None = None,
              sheets: Sequence[str] | None = None) -> Table:
    """The rows of a CSV, XLSX or GeoJSON file, a chunk at a time. ``data`` gives the bytes of an upload,
    ``filename`` then its type; ``score`` tells a header row; ``limits`` default to the process's settings
    (``YIZHAN_MAX_IMPORT_ROWS``, ``YIZHAN_MAX_UNCOMPRESSED_MB``): the API passes those of its app's own settings
    (``ImportLimits.from_settings``). ``sheets`` (a workbook only) names the sheets to read; the others are then
    not looked at. InvalidInput (or ImportRejected, rows named) says what is wrong: at once for the file as a
    whole, while the parts are read for their rows. ``cancelled`` is asked before the file is parsed, between the
    members of a workbook's archive, every ``CANCEL_EVERY_ROWS`` rows of a sheet or features of a GeoJSON file
    and before each chunk of a CSV file (``ImportCancelled``)."""
    limits = limits or ImportLimits.from_settings(get_settings())
    name = filename or str(path)
    source = Path(name).name
    suffix = Path(name).suffix.lower()
    opener = _opener(path, data, source)
    with opener() as stream:
        start = stream.read(READ_BLOCK_BYTES)
        while start and not start.strip():
            start = stream.read(READ_BLOCK_BYTES)
    if not start.strip():
        raise InvalidInput(f"{source}: the file is empty")
    stop_if_cancelled(cancelled, source)
    if sheets and suffix not in {".xlsx", ".xlsm"}:
        raise InvalidInput(f"{source}: 只有 Excel 工作簿有工作表，请去掉 --sheet / sheet(s) "
                           f"{', '.join(map(repr, sheets))} asked for, but a {suffix or 'file of no type'} file has "
                           f"no sheets; leave out --sheet (API: sheet)")
    if suffix in {".csv", ".txt", ".tsv"}:
        return _read_csv(opener, source, score, limits, cancelled)
    if suffix in {".xlsx", ".xlsm"}:
        return _read_xlsx(opener, source, score, limits, cancelled, list(sheets or []))
    if suffix in {".geojson", ".json"}:
        return Table(iter([_read_geojson(opener, source, limits, cancelled)]))
    raise InvalidInput(f"{source}: unsupported file type {suffix or '(none)'}; expected .csv, .xlsx or .geojson")


Opener = Callable[[], IO[bytes]]
"""Opens the file's bytes from the start (a path is opened again, an upload's bytes are wrapped)."""


def _opener(path: Path | str | None, data: bytes | None, source: str) -> Opener:
    if data is not None:
        return lambda: io.BytesIO(data)
    file = Path(str(path))

    def open_file() -> IO[bytes]:
        try:
            return file.open("rb")
        except OSError as exc:
            raise InvalidInput(f"{source}: cannot read the file ({exc.strerror})") from exc
    return open_file


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

def implausible_characters(text: str) -> int:
    """How unlike a registry's text ``text`` is: its characters outside ASCII, common CJK ideographs and
    punctuation and full-width forms, with a C1 control character or a replacement character counting ten (such
    text was decoded in the wrong encoding). 0 for plain Chinese or English text."""
    odd = len(text) - len(_COMMON_TEXT.findall(text))
    return odd + 9 * len(_SUSPECT.findall(text))


def _valid_encodings(opener: Opener) -> list[str]:
    """Those of ``ENCODINGS`` the whole file is valid text in, read a block at a time (no decoded copy is kept)."""
    decoders = {enc: codecs.getincrementaldecoder(enc)() for enc in ENCODINGS}
    with opener() as stream:
        while decoders and (block := stream.read(READ_BLOCK_BYTES)):
            for enc in list(decoders):
                try:
                    decoders[enc].decode(block)
                except UnicodeDecodeError:
                    del decoders[enc]
    for enc in list(decoders):
        try:
            decoders[enc].decode(b"", final=True)
        except UnicodeDecodeError:
            del decoders[enc]
    return [enc for enc in ENCODINGS if enc in decoders]


def _head_text(opener: Opener, enc: str) -> str:
    """The text of the file's first 64 kB in ``enc`` (a character cut at the end left out)."""
    with opener() as stream:
        return stream.read(65536).decode(enc, errors="ignore")


def _encodings(opener: Opener) -> Iterator[tuple[str, str]]:
    """Each of ``ENCODINGS`` that the file is valid in, with the text of its first 64 kB (a whole decoded file is
    not kept: the rows are decoded as they are read)."""
    for enc in _valid_encodings(opener):
        yield enc, _head_text(opener, enc)


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


def _choose_encoding(samples: list[tuple[str, str]], score: HeaderScore) -> tuple[str, str, int] | None:
    """Of the encodings the file is valid in (each with the text of its head), the encoding, separator and header
    index under which the header row names the most known columns; ties go to the more plausible text
    (``implausible_characters``), then to the order of ``ENCODINGS``. None when no header is found."""
    best: tuple[tuple[int, int, int], tuple[str, str, int]] | None = None
    for order, (enc, sample) in enumerate(samples):
        for sep in SEPARATORS:
            rows = _head_rows(sample, sep)
            header = find_header(rows, score)
            if header is None:
                continue
            rank = (score(rows[header]), -implausible_characters(sample), -order)
            if best is None or rank > best[0]:
                best = (rank, (enc, sep, header))
            break  # the first separator with a header, as in each encoding before
    return best[1] if best else None


def _read_csv(opener: Opener, source: str, score: HeaderScore, limits: ImportLimits,
              cancelled: Cancelled | None = None) -> Table:
    samples = list(_encodings(opener))
    if not samples:
        raise InvalidInput(f"{source}: the file is neither UTF-8 nor GBK text; save it as CSV UTF-8")
    chosen = _choose_encoding(samples, score)
    hint = ""
    if chosen is None:  # read as commas and say what the file looks like
        lines = samples[0][1].lstrip("\ufeff").splitlines()
        first_line = lines[0] if lines else ""
        counts = {s: first_line.count(s) for s in SEPARATORS}
        likely = max(counts, key=lambda s: counts[s])
        if likely != "," and counts[likely] > counts[","]:
            hint = (f"this file looks {SEPARATOR_NAMES[likely]}-separated ({counts[likely]} {SEPARATOR_NAMES[likely]}s "
                    f"in its first line), but none of its column names is known")
        else:
            head_rows = _head_rows(samples[0][1], ",")
            hint = _garbled_hint(head_rows[0], score) if head_rows else ""
        chosen = (samples[0][0], ",", 0)
    enc, sep, header = chosen
    stream = opener()
    reader = csv.reader(io.TextIOWrapper(stream, encoding=enc, newline=""), delimiter=sep, skipinitialspace=True)
    try:
        for _ in range(header):  # title rows
            next(reader)
        head = next(reader, None)
    except csv.Error as exc:
        stream.close()
        raise InvalidInput(f"{source}: not a well-formed CSV file (line {reader.line_num}): {exc}") from exc
    if head is None:
        stream.close()
        raise InvalidInput(f"{source}: the file is empty")
    names = unique_headers(head)
    chunks = _csv_chunks(stream, reader, names, header + 1, sep, source, limits, cancelled)
    return Table(iter([Part(names, chunks, hint=hint)]), marked_text=True)


def _csv_chunks(stream: IO[bytes], reader: Iterator[list[str]], names: list[str], header_row: int, sep: str,
                source: str, limits: ImportLimits, cancelled: Cancelled | None) -> Iterator[pd.DataFrame]:
    """The records below a CSV file's header as frames of ``CHUNK_ROWS`` rows; rows of another width than the
    header are collected and refused together (``ImportRejected``) after the last record (no frame is given
    after the first such row)."""
    width = len(names)
    problems: list[RowProblem] = []
    count = 0
    try:
        while True:
            stop_if_cancelled(cancelled, source)
            try:
                records = list(itertools.islice(reader, CHUNK_ROWS))
            except csv.Error as exc:
                line = getattr(reader, "line_num", "?")
                raise InvalidInput(f"{source}: not a well-formed CSV file (line {line}): {exc}") from exc
            if not records:
                break
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
                yield _frame(names, records, range(first, first + len(records)))
            del records
    finally:
        stream.close()
    if problems:
        raise ImportRejected(source, problems)


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


def _check_archive(stream: IO[bytes], source: str, limits: ImportLimits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"{source}: not a readable XLSX workbook (not a ZIP archive); save it again as "
                           f"Excel Workbook (.xlsx)") from exc
    unpacked = sum(i.file_size for i in archive.infolist())
    if unpacked > limits.max_uncompressed_mb * _MB:
        raise InvalidInput(f"{source}: the workbook unpacks to {unpacked / _MB:,.0f} MB, more than the limit of "
                           f"{limits.max_uncompressed_mb:g} MB (YIZHAN_MAX_UNCOMPRESSED_MB); split it or save it "
                           f"as CSV")
    return archive


def _has_formulas(archive: zipfile.ZipFile, source: str, cancelled: Cancelled | None = None) -> bool:
    """Whether any worksheet holds a formula cell (read in blocks; nothing is kept). ``cancelled`` is asked
    before each worksheet member and each block of it."""
    for name in archive.namelist():
        if not _WORKSHEET.fullmatch(name):
            continue
        stop_if_cancelled(cancelled, source)
        with archive.open(name) as member:
            tail = b""
            while chunk := member.read(READ_BLOCK_BYTES):
                if _FORMULA_TAG.search(tail + chunk):
                    return True
                tail = chunk[-16:]
                stop_if_cancelled(cancelled, source)
    return False


Formula = tuple[int, int, str]
"""A formula cell without a stored result: row number (from 1), column index (from 0), the formula."""


def _sheet_rows(ws: object, source: str, limits: ImportLimits, cancelled: Cancelled | None = None,
                formulas: object | None = None, unresolved: list[Formula] | None = None) -> Iterator[list[str]]:
    """The rows of a read-only sheet as text cells without trailing blanks, one at a time; InvalidInput when the
    sheet declares or holds more rows than ``limits`` allow, or is wider than ``MAX_COLUMNS``. ``cancelled`` is
    asked every ``CANCEL_EVERY_ROWS`` rows. ``formulas``, the same sheet opened with its formulas, is read in
    step: each formula cell whose stored result is empty goes to ``unresolved``."""
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
    in_step: Iterator[tuple[object, ...]] = iter(())
    if formulas is not None:
        formulas.reset_dimensions()  # type: ignore[attr-defined]
        in_step = formulas.iter_rows(max_col=MAX_COLUMNS, values_only=True)  # type: ignore[attr-defined]
    for n, values in enumerate(ws.iter_rows(max_col=MAX_COLUMNS, values_only=True)):  # type: ignore[attr-defined]
        if n % CANCEL_EVERY_ROWS == 0:
            stop_if_cancelled(cancelled, source)
        if n > limits.max_rows + HEADER_SEARCH_ROWS:
            raise InvalidInput(f"{source}: sheet {title!r} has more than {limits.max_rows:,} rows, the limit "
                               f"(YIZHAN_MAX_IMPORT_ROWS); split the workbook")
        cells = [_cell_text(v) for v in values]
        for j, f in enumerate(next(in_step, ())):
            if isinstance(f, str) and f.startswith("=") and (j >= len(cells) or cells[j] == ""):
                assert unresolved is not None
                unresolved.append((n + 1, j, f))
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


def _formula_problems(unresolved: list[Formula], header_cells: list[str], first_row: int) -> list[RowProblem]:
    """The formula cells without a stored result (a file written by a program, never opened in Excel) among a
    sheet's rows from ``first_row`` on, named by the column's header."""
    problems = []
    for n, j, formula in unresolved:
        if n < first_row:
            continue
        names = unique_headers(header_cells + [""] * max(0, j + 1 - len(header_cells)))
        problems.append(RowProblem(
            n, names[j], formula, "a value, but the formula has no stored result; open the file in Excel "
            "(or LibreOffice) and save it, so the values are stored, then import it again"))
    return problems


def _read_xlsx(opener: Opener, source: str, score: HeaderScore, limits: ImportLimits,
               cancelled: Cancelled | None = None, wanted: list[str] | None = None) -> Table:
    with opener() as stream, _check_archive(stream, source, limits) as archive:
        formulas = _has_formulas(archive, source, cancelled)
    table = Table(iter(()))
    table.parts = _xlsx_parts(opener, source, score, limits, cancelled, wanted or [], formulas, table.sheets)
    return table


def _load_book(stream: IO[bytes], source: str, data_only: bool) -> openpyxl.Workbook:
    import openpyxl  # only a workbook needs it (0.1 s of a command's start)

    try:
        return openpyxl.load_workbook(stream, read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise InvalidInput(f"{source}: not a readable XLSX workbook: {exc}") from exc


def _xlsx_parts(opener: Opener, source: str, score: HeaderScore, limits: ImportLimits,
                cancelled: Cancelled | None, wanted: list[str], formulas: bool,
                sheets: list[str]) -> Iterator[Part]:
    """The sheets of a workbook with the registry's headers (or the ``wanted`` ones), one part each, their rows
    read as they are asked for; ``sheets`` gets the title of each part. Raised after the last: sheets holding data
    without the headers (unless ``wanted``), formula cells without stored results, a workbook of empty sheets."""
    stream = opener()
    f_stream = opener() if formulas else None
    try:
        book = _load_book(stream, source, data_only=True)
        f_book = _load_book(f_stream, source, data_only=False) if f_stream is not None else None
        try:
            titles = [ws.title for ws in book.worksheets]
            missing = [w for w in wanted if w not in titles]
            if missing:
                there, named = ", ".join(map(repr, titles)) or "(none)", ", ".join(map(repr, missing))
                raise InvalidInput(f"{source}: 工作簿中没有工作表 {named}，现有工作表：{there} / no sheet named "
                                   f"{named}; the workbook's sheets are {there}")
            others: list[str] = []
            problems: list[RowProblem] = []
            first_rows: list[list[str]] = []
            for ws in book.worksheets:
                if wanted and ws.title not in wanted:
                    continue
                unresolved: list[Formula] = []
                f_ws = f_book[ws.title] if f_book is not None else None
                rows = _sheet_rows(ws, source, limits, cancelled, f_ws, unresolved)
                top = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
                header = find_header(top, score)
                if header is None and wanted:  # a sheet asked for by name: its first row, for the message
                    if not any(any(c.strip() for c in r) for r in itertools.chain(top, rows)):
                        raise InvalidInput(f"{source}: 工作表 {ws.title!r} 是空的 / sheet {ws.title!r} is empty")
                    first = top[0] if top else []
                    sheets.append(ws.title)
                    yield Part(unique_headers(first), iter(()), ws.title, _garbled_hint(first, score))
                    continue
                if header is None:
                    if any(any(c.strip() for c in r) for r in itertools.chain(top, rows)):
                        others.append(ws.title)
                        first_rows = first_rows or top[:1]
                    continue  # else an empty sheet
                body = _body_frames(top[header], itertools.chain(top[header + 1:], rows), header + 2)
                sheets.append(ws.title)
                yield Part(unique_headers(top[header]), body, ws.title)
                for _ in body:  # the rest of the sheet, when the caller stopped early
                    pass
                problems += _formula_problems(unresolved, top[header], header + 2)
        except (InvalidInput, ImportRejected, ImportCancelled, GeneratorExit):
            raise
        except Exception as exc:
            raise InvalidInput(f"{source}: not a readable XLSX workbook: {exc}") from exc
        finally:
            book.close()
            if f_book is not None:
                f_book.close()
    finally:
        stream.close()
        if f_stream is not None:
            f_stream.close()
    if sheets and others:
        raise InvalidInput(f"{source}: sheet(s) {', '.join(map(repr, others))} hold data but not the registry's "
                           f"column headers, and would be left out (read: {', '.join(sheets)}); nothing was "
                           f"imported. Give those sheets the headers, delete them, or name the sheets to read "
                           f"with --sheet (API: sheet)")
    if problems:
        raise ImportRejected(source, problems)
    if not sheets and not others:
        raise InvalidInput(f"{source}: every sheet of the workbook is empty")
    if not sheets:  # no sheet with known headers: the first sheet's own, for the message
        head = first_rows[0] if first_rows else []
        yield Part(unique_headers(head), iter(()), others[0] if others else None, _garbled_hint(head, score))


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


def _read_geojson(opener: Opener, source: str, limits: ImportLimits, cancelled: Cancelled | None = None) -> Part:
    """A FeatureCollection's Point features as one part: the properties' keys and ``lon``, ``lat`` (and ``id``
    from a feature's own ``id``) as headers, frames of ``CHUNK_ROWS`` features. The document is parsed whole;
    ``cancelled`` is asked after that and every ``CANCEL_EVERY_ROWS`` features."""
    samples = list(_encodings(opener))
    if not samples:
        raise InvalidInput(f"{source}: the file is neither UTF-8 nor GBK text; save it as UTF-8")
    enc = min(samples, key=lambda s: implausible_characters(s[1]))[0]  # first of the most plausible
    try:
        with opener() as stream:
            doc = json.load(io.TextIOWrapper(stream, encoding=enc))
        # an unpaired \ud800-\udfff escape decodes to a lone surrogate, which no UTF-8 text (nor the database) holds
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:  # before ValueError, its base class
        raise InvalidInput(f"{source}: not valid JSON text: a \\u escape makes a lone UTF-16 surrogate "
                           f"({exc.object[exc.start]!r}); save the file as UTF-8") from exc
    except ValueError as exc:  # JSONDecodeError, or a number too long to convert
        raise InvalidInput(f"{source}: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInput(f"{source}: not valid GeoJSON: arrays or objects nested too deeply") from exc
    stop_if_cancelled(cancelled, source)
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(feats, list):
        raise InvalidInput(f"{source}: expected a GeoJSON FeatureCollection")
    if len(feats) > limits.max_rows:
        raise InvalidInput(f"{source}: {len(feats):,} features, more than the limit of {limits.max_rows:,} "
                           f"(YIZHAN_MAX_IMPORT_ROWS); split the file")
    transformer = _crs_transformer(doc, source)
    headers: dict[str, None] = {}
    for i, f in enumerate(feats, start=1):
        if i % CANCEL_EVERY_ROWS == 0:
            stop_if_cancelled(cancelled, source)
        if not isinstance(f, dict):
            raise InvalidInput(f"{source}: feature {i} is not a GeoJSON Feature object")
        props = f.get("properties") or {}
        geom = f.get("geometry") or {}
        if not isinstance(props, dict) or not isinstance(geom, dict):
            raise InvalidInput(f"{source}: feature {i}: 'properties' and 'geometry' must be JSON objects")
        headers.update(dict.fromkeys(map(str, props)))
        headers.update(dict.fromkeys(("lon", "lat")))  # a feature that is no point is refused by row
        if "id" not in props and f.get("id") is not None:
            headers["id"] = None
    names = list(headers)
    return Part(names, _geojson_chunks(feats, names, transformer, source, cancelled))


def _geojson_chunks(feats: list[dict[str, object]], names: list[str], transformer: Transformer | None,
                    source: str, cancelled: Cancelled | None) -> Iterator[pd.DataFrame]:
    """Frames of ``CHUNK_ROWS`` features under ``names``; features that are not points are refused together
    (``ImportRejected``) after the last (no frame is given after the first)."""
    problems: list[RowProblem] = []
    for start in range(0, len(feats), CHUNK_ROWS):
        rows = []
        for i, f in enumerate(feats[start:start + CHUNK_ROWS], start=start + 1):
            if i % CANCEL_EVERY_ROWS == 0:
                stop_if_cancelled(cancelled, source)
            props: dict[str, object] = f.get("properties") or {}  # type: ignore[assignment]
            geom: dict[str, object] = f.get("geometry") or {}  # type: ignore[assignment]
            row = {str(k): "" if v is None else (";".join(map(str, v)) if isinstance(v, list) else str(v))
                   for k, v in props.items()}
            coords = geom.get("coordinates")
            if geom.get("type") != "Point":
                problems.append(RowProblem(i, "geometry", geom.get("type") or "(none)",
                                           "Point geometry (one station is one point; give the entrance's "
                                           "position)"))
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
            rows.append([row.get(k, "") for k in names])
        if not problems:
            yield _frame(names, rows, range(start + 1, start + 1 + len(rows)))
        del rows
    if problems:
        raise ImportRejected(source, problems)
