"""Point shapefiles read with the text encoding they were written in.

A shapefile's field names and text values are bytes in some encoding; the ``.cpg`` beside it names it. Files
from Chinese GIS desktops are often GBK without a ``.cpg`` (read as Latin-1 they give garbled names such as
``ÊÕ»õ¾­¶È`` for 收货经度). The encoding used, in this order:

1. ``encoding`` given by the caller (``--encoding gbk|utf-8``);
2. the ``.cpg`` (``UTF-8``, ``GBK``, ``936``, ``CP936``, ``GB18030``, ``BIG5`` ...);
3. from the bytes of the ``.dbf`` (its field names and first records): UTF-8 when they are valid UTF-8 and do not
   look garbled, GBK (read as GB 18030, its superset) otherwise.

A ``.shp`` or a ``.zip`` holding one shapefile (with its ``.shx``, ``.dbf``, ``.prj``, ``.cpg``) is read; the
``.prj`` gives the CRS, and the points are returned in it (the caller transforms them to WGS 84).
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import geopandas as gpd

from yizhan.errors import InvalidInput
from yizhan.stations.tables import ImportLimits, implausible_characters

ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "65001": "utf-8", "gbk": "gbk", "cp936": "gbk", "936": "gbk",
             "ansi936": "gbk", "gb2312": "gbk", "gb18030": "gb18030", "54936": "gb18030", "big5": "big5",
             "cp950": "big5", "950": "big5"}
"""The encodings a shapefile may be read in, by the names ``--encoding`` and ``.cpg`` files use."""
SAMPLE_RECORDS = 2000
"""Records of the ``.dbf`` whose text decides its encoding when there is no ``.cpg``."""
HEAD_MB = 8
"""The start of a ``.dbf`` read for its encoding, MB."""
_MB = 1024 * 1024


@dataclass
class PointFile:
    """The features of a shapefile (attributes and point geometry, in the file's CRS), the encoding its text was
    read in and why (``"--encoding"``, ``".cpg"`` or ``"detected"``)."""

    frame: gpd.GeoDataFrame
    encoding: str
    encoding_from: str


def encoding_name(name: str, *, source: str, what: str) -> str:
    """The codec ``name`` stands for (``ENCODINGS``); InvalidInput naming ``what`` (``--encoding``, the
    ``.cpg``) otherwise."""
    key = re.sub(r"[\s_\-]", "", name.strip().lower())
    if key not in ENCODINGS:
        raise InvalidInput(f"{source}: {what} {name.strip()!r} 不是可用的编码 / is not an encoding read here; "
                           f"expected utf-8 or gbk (also gb18030, big5)")
    return ENCODINGS[key]


def read_point_shapefile(path: Path, *, encoding: str | None = None,
                         limits: ImportLimits = ImportLimits()) -> PointFile:
    """The features of a ``.shp`` (or of the one shapefile in a ``.zip``) with their text decoded (see the
    module's docstring); InvalidInput in one line when the file is missing a part, too large or unreadable."""
    source = path.name
    parts: dict[str, Callable[[], bytes]]
    if path.suffix.lower() == ".zip":
        dataset, parts = _zip_parts(path, source, limits)
    else:
        dataset = str(path)
        parts = {ext: _head_reader(p) for ext in (".dbf", ".cpg") if (p := _sibling(path, ext)) is not None}
    if ".dbf" not in parts:
        raise InvalidInput(f"{source}: 缺少 .dbf 属性文件 / the shapefile's .dbf (its attribute table) is missing; "
                           f"copy it (and the .shx, .prj, .cpg) beside the .shp, or give a .zip holding them all")
    if encoding is not None:
        enc, why = encoding_name(encoding, source=source, what="--encoding"), "--encoding"
    elif ".cpg" in parts:
        cpg = parts[".cpg"]().decode("ascii", errors="replace")
        enc, why = encoding_name(cpg, source=source, what=".cpg"), ".cpg"
    else:
        enc, why = dbf_encoding(parts[".dbf"]()), "detected"
    try:
        frame = gpd.read_file(dataset, encoding=enc, engine="pyogrio", max_features=limits.max_rows + 1)
    except Exception as exc:  # GDAL's errors for a damaged or partial shapefile
        raise InvalidInput(f"{source}: 无法读取 shapefile / cannot read the shapefile: {exc}") from exc
    if len(frame) > limits.max_rows:
        raise InvalidInput(f"{source}: 要素超过 {limits.max_rows:,} 个 / more than {limits.max_rows:,} features, "
                           f"the limit of one import (YIZHAN_MAX_IMPORT_ROWS); split the file")
    return PointFile(frame, enc, why)


def _sibling(path: Path, ext: str) -> Path | None:
    """The file beside ``path`` with the same stem and extension ``ext`` in either case, if there is one."""
    for candidate in (path.with_suffix(ext), path.with_suffix(ext.upper())):
        if candidate.exists():
            return candidate
    return None


def _head_reader(path: Path) -> Callable[[], bytes]:
    """A reader of the first ``HEAD_MB`` MB of ``path`` (all a ``.dbf``'s sample records need)."""
    def read() -> bytes:
        with path.open("rb") as f:
            return f.read(HEAD_MB * _MB)
    return read


def _bytes_reader(data: bytes) -> Callable[[], bytes]:
    """A reader of bytes already read (a zip member's start)."""
    return lambda: data


def _zip_parts(path: Path, source: str, limits: ImportLimits) -> tuple[str, dict[str, Callable[[], bytes]]]:
    """The GDAL name of the one shapefile in the zip ``path`` and readers of its ``.dbf`` and ``.cpg``."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{source}: 不是可读的 zip 文件 / not a readable zip archive") from exc
    with archive:
        members = archive.infolist()
        unpacked = sum(m.file_size for m in members)
        shps = [m.filename for m in members if m.filename.lower().endswith(".shp") and "__MACOSX" not in m.filename]
        raw = {m.filename.lower(): m.filename for m in members}
        if unpacked > limits.max_uncompressed_mb * _MB:
            raise InvalidInput(f"{source}: the archive unpacks to {unpacked / _MB:,.0f} MB, more than the limit of "
                               f"{limits.max_uncompressed_mb:g} MB (YIZHAN_MAX_UNCOMPRESSED_MB)")
        if len(shps) != 1:
            found = ", ".join(shps) or "none"
            raise InvalidInput(f"{source}: zip 中须恰有一个 .shp / the zip must hold exactly one shapefile (.shp); "
                               f"found {found}")
        stem = str(PurePosixPath(shps[0]).with_suffix("")).lower()
        data = {}
        for ext in (".dbf", ".cpg"):
            if stem + ext in raw:
                with archive.open(raw[stem + ext]) as member:
                    data[ext] = member.read(HEAD_MB * _MB)
    parts = {ext: _bytes_reader(b) for ext, b in data.items()}
    return f"/vsizip/{path.resolve()}/{shps[0]}", parts


def dbf_encoding(dbf: bytes) -> str:
    """``utf-8`` or ``gb18030`` for the field names and text values at the start of a ``.dbf`` (its first
    ``SAMPLE_RECORDS`` records): UTF-8 when they are ASCII, or valid UTF-8 that reads no stranger than GBK."""
    texts = _dbf_texts(dbf)
    if all(t.isascii() for t in texts):
        return "utf-8"
    as_utf8, as_gbk = _decoded(texts, "utf-8"), _decoded(texts, "gb18030")
    if as_utf8 is not None and (as_gbk is None or implausible_characters(as_utf8) <= implausible_characters(as_gbk)):
        return "utf-8"
    return "gb18030" if as_gbk is not None else "utf-8"


def _dbf_texts(dbf: bytes) -> list[bytes]:
    """The field names and the character values of the first records of a dBase file, as bytes."""
    if len(dbf) < 32:
        return []
    records, header_len, record_len = struct.unpack("<IHH", dbf[4:12])
    fields: list[tuple[bytes, bytes, int]] = []
    pos = 32
    while pos + 32 <= min(header_len, len(dbf)) and dbf[pos] != 0x0D:
        d = dbf[pos:pos + 32]
        fields.append((d[:11].split(b"\0")[0], d[11:12], d[16]))
        pos += 32
    texts = [name for name, _, _ in fields]
    stream = io.BytesIO(dbf[header_len:])
    for _ in range(min(records, SAMPLE_RECORDS)):
        record = stream.read(record_len)
        if len(record) < record_len:
            break
        at = 1  # the deletion flag
        for _, kind, width in fields:
            if kind == b"C":
                texts.append(record[at:at + width].rstrip(b" \0"))
            at += width
    return texts


def _decoded(texts: list[bytes], encoding: str) -> str | None:
    """``texts`` decoded and joined, or None when one is not valid in ``encoding``; a character cut at the end of
    a fixed-width field (a writer truncating the bytes) is not held against it."""
    out = []
    for t in texts:
        try:
            out.append(codecs.getincrementaldecoder(encoding)().decode(t, final=False))
        except UnicodeDecodeError:
            return None
    return "\n".join(out)
