"""An area's stored demand points: one partition of ``demand_points`` per area, written whole by binary COPY and
read back whole as arrays.

Each point is a row of numbers: ``lon``, ``lat`` (WGS 84 degrees), ``x``, ``y`` (metres in the area's metric CRS,
east and north), ``weight`` (orders), ``observed_at`` (the order's instant, NULL without one) and ``id`` (its
number in the area, from 1 in the order of the file; an appended file continues the numbers). There is no geometry
and no index: nothing looks points up by place or by id, every reader takes all the points of an area (a coverage
run, hours, capacity, site recommendation), and an index built on ten million points costs more time than the
points take to load. A point's cell is its square of the layer's cell size, ``floor(x / size)``, ``floor(y /
size)``, computed from the stored metres by the import and by the readers alike.

``demand_points`` is partitioned by list of ``area_id``, one partition ``demand_points_a{id}`` per area, made on the
area's first import. Replacing an area's points (``replace_points``) loads a new table created in the import's
own transaction (``COPY ... FREEZE``: rows written frozen, and with ``wal_level=minimal`` written without WAL),
then, still in that transaction, drops the old partition and attaches the new one: readers see the old points or
the new ones, and a failed import leaves the stored points as they were. The swap takes the lock that every read of
``demand_points`` waits for only at its end, for the moment of the swap and the commit. Imports of one area wait
for each other (an advisory lock per area, for the transaction).

No foreign key ties the points to ``areas``: PostgreSQL checks one per row (a million rows took seven times as
long), and a partition is only made for an area the import has just found; deleting an area drops its partition
(a trigger of migration 0014).

Rows are encoded in numpy (big-endian structured arrays holding each field's length word) and sent through a
queued writer, so the server takes one block while the next is encoded; ``stored_points`` reads each column back
as one binary array (``array_agg``) and decodes it with numpy, with no Python per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
from psycopg import Connection as PgConnection
from psycopg import sql
from psycopg.adapt import Loader
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection

from yizhan.areas import AreaInfo
from yizhan.data.demand_times import zone_of
from yizhan.db.binary_copy import HEADER as COPY_HEADER
from yizhan.db.binary_copy import TRAILER as COPY_TRAILER
from yizhan.db.engine import driver_of

PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00:00Z in microseconds since 1970: PostgreSQL's binary timestamps count from it."""
ENCODE_ROWS = 1 << 18
"""Rows encoded at a time (about 24 MB): the server takes one block while the next is encoded."""
MAX_POINTS = 2**31 - 1
"""Most points an area may hold: their numbers (``id``) are 32-bit. What a command-line import allows; uploads are
bounded by ``YIZHAN_MAX_IMPORT_ROWS``."""
READ_PAGES = 1 << 17
"""Table pages (8 kB) read back as one array per column: about 12 million points, 150 MB an array."""
LOCK_CLASS = 17_017
"""The first key of the advisory lock an import of an area's points takes (the second is the area's id)."""
COLUMNS = ("area_id", "id", "lon", "lat", "x", "y", "weight", "observed_at")
"""The columns of ``demand_points``, in the order a COPY sends them."""
COLUMN_TYPES = ("area_id integer NOT NULL, id integer NOT NULL, lon double precision NOT NULL, "
                "lat double precision NOT NULL, x double precision NOT NULL, y double precision NOT NULL, "
                "weight double precision NOT NULL, observed_at timestamp with time zone")
"""``COLUMNS`` with their types, as migration 0013 made ``demand_points`` (a partition must match them)."""
_ROW = np.dtype([("n", ">i2"), ("la", ">i4"), ("a", ">i4"), ("li", ">i4"), ("id", ">i4"), ("llon", ">i4"),
                 ("lon", ">f8"), ("llat", ">i4"), ("lat", ">f8"), ("lx", ">i4"), ("x", ">f8"), ("ly", ">i4"),
                 ("y", ">f8"), ("lw", ">i4"), ("w", ">f8"), ("lt", ">i4"), ("t", ">i8")])
_NO_TIME = _ROW.itemsize - 8
"""A row without a time ends after the time's length word (-1, NULL)."""
_NEVER = np.iinfo(np.int64).min
"""``-infinity`` as a binary timestamp: how a read marks a point without a time."""


@dataclass
class PointBlock:
    """Points to store: ``lon``, ``lat`` WGS 84 degrees, ``x``, ``y`` metres in the area's metric CRS (east, north),
    ``weight`` orders, ``micros`` the order's instant in microseconds since 2000-01-01 UTC where ``has_time``."""

    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    micros: np.ndarray
    has_time: np.ndarray

    def __len__(self) -> int:
        return len(self.lon)


def partition_name(area_id: int) -> str:
    """The partition of ``demand_points`` holding area ``area_id``'s points."""
    return f"demand_points_a{int(area_id)}"


def encode_rows(area_id: int, first_id: int, block: PointBlock) -> bytes:
    """The block's rows in PostgreSQL's binary COPY format (without the file header and trailer), numbered from
    ``first_id``; a point without a time has a NULL ``observed_at``."""
    n = len(block)
    rows = np.empty(n, _ROW)
    rows["n"], rows["la"], rows["a"], rows["li"] = len(COLUMNS), 4, area_id, 4
    rows["id"] = np.arange(first_id, first_id + n, dtype=np.int64)
    for length in ("llon", "llat", "lx", "ly", "lw"):
        rows[length] = 8
    rows["lon"], rows["lat"], rows["x"], rows["y"], rows["w"] = block.lon, block.lat, block.x, block.y, block.weight
    has = np.asarray(block.has_time, dtype=bool)
    rows["lt"] = np.where(has, 8, -1)
    rows["t"] = block.micros
    if has.all():
        return rows.tobytes()
    raw = rows.view(np.uint8).reshape(n, _ROW.itemsize)
    if not has.any():
        return np.ascontiguousarray(raw[:, :_NO_TIME]).tobytes()
    keep = np.ones(raw.shape, dtype=bool)
    keep[~has, _NO_TIME:] = False
    return raw[keep].tobytes()


def _lock(cur: psycopg.Cursor[Any], area_id: int) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, int(area_id)))


def _copy(cur: psycopg.Cursor[Any], table: str, area_id: int, first_id: int, blocks: Iterable[PointBlock], *,
          freeze: bool) -> int:
    """Send the blocks into ``table`` by one binary COPY; the number of rows sent."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY{})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        sql.SQL(", FREEZE") if freeze else sql.SQL(""))
    count = 0
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as cp:
        cp.write(COPY_HEADER)
        for block in blocks:
            for start in range(0, len(block), ENCODE_ROWS):
                part = _slice(block, slice(start, start + ENCODE_ROWS))
                cp.write(memoryview(encode_rows(area_id, first_id + count, part)))
                count += len(part)
        cp.write(COPY_TRAILER)
    return count


def _slice(block: PointBlock, part: slice) -> PointBlock:
    if part.start == 0 and part.stop >= len(block):
        return block
    return PointBlock(block.lon[part], block.lat[part], block.x[part], block.y[part], block.weight[part],
                      block.micros[part], block.has_time[part])


@dataclass(frozen=True)
class LoadedPoints:
    """Points loaded into a new table by ``load_points``, waiting to be swapped in (``swap_points``)."""

    area_id: int
    table: str
    count: int


def load_points(conn: PgConnection[Any], area_id: int, blocks: Iterable[PointBlock]) -> LoadedPoints:
    """Load ``blocks`` into a new table created in the open transaction of ``conn`` (binary COPY, FREEZE), to be
    swapped in for the area's points by ``swap_points`` in the same transaction. The blocks are consumed while the
    COPY runs (the server takes one while the next is made): an exception from them aborts the COPY and, raised on,
    the transaction, and the stored points stay as they were."""
    load = f"{partition_name(area_id)}_load"
    with conn.cursor() as cur:
        _lock(cur, area_id)
        # the columns spelled out, not LIKE demand_points: LIKE would hold a lock on the parent table until commit,
        # and two areas' imports, each then dropping its old partition, would wait for each other (a deadlock)
        cur.execute(sql.SQL("CREATE TABLE {} (" + COLUMN_TYPES + ", CONSTRAINT {} CHECK (area_id = {}))").format(
            sql.Identifier(load), sql.Identifier(f"{load}_area"), sql.Literal(int(area_id))))
        count = _copy(cur, load, area_id, 1, blocks, freeze=True)
    return LoadedPoints(int(area_id), load, count)


def swap_points(conn: PgConnection[Any], loaded: LoadedPoints) -> None:
    """Make the loaded table the area's partition of ``demand_points`` in place of the one it had: the old one is
    dropped and the new one attached (its CHECK constraint spares the scan attaching would make), in the open
    transaction of ``conn``. Reads of ``demand_points`` wait from here until the transaction ends."""
    name = partition_name(loaded.area_id)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        cur.execute(sql.SQL("ALTER TABLE demand_points ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.Identifier(loaded.table), sql.Literal(loaded.area_id)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(loaded.table),
                                                                 sql.Identifier(name)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            sql.Identifier(name), sql.Identifier(f"{loaded.table}_area"), sql.Identifier(f"{name}_area")))


def replace_points(conn: PgConnection[Any], area_id: int, blocks: Iterable[PointBlock]) -> int:
    """Make ``blocks`` the area's stored points, in the open transaction of ``conn``: ``load_points`` then
    ``swap_points``. Returns the number of points."""
    loaded = load_points(conn, area_id, blocks)
    swap_points(conn, loaded)
    return loaded.count


def append_points(conn: PgConnection[Any], area_id: int, blocks: Iterable[PointBlock]) -> int:
    """Add ``blocks`` to the area's stored points (numbered on from the last), by binary COPY into its partition
    (made when the area has none), in the open transaction of ``conn``. Returns the number of points added."""
    name = partition_name(area_id)
    with conn.cursor() as cur:
        _lock(cur, area_id)
        cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF demand_points FOR VALUES IN ({})").format(
            sql.Identifier(name), sql.Literal(int(area_id))))
        cur.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(name)))
        row = cur.fetchone()
        last = int(row[0]) if row is not None else 0
        return _copy(cur, name, area_id, last + 1, blocks, freeze=False)


def drop_points(conn: PgConnection[Any], area_id: int) -> None:
    """Forget the area's stored points (its partition), in the open transaction of ``conn``."""
    with conn.cursor() as cur:
        _lock(cur, area_id)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(partition_name(area_id))))


# --- reading -------------------------------------------------------------------------------------------------

class _RawArray(Loader):
    """An array column as the bytes of its binary form (decoded in numpy, not element by element)."""

    format = psycopg.pq.Format.BINARY

    def load(self, data: Any) -> bytes:
        return bytes(data)


_ARRAY_HEAD = 20
"""Bytes before the first element of a one-dimensional binary array (dimensions, flags, type, size, lower bound)."""


def _elements(data: bytes | None, kind: str) -> np.ndarray:
    """The elements of a one-dimensional binary array without NULLs (each after its length word) as numpy."""
    if data is None:
        return np.empty(0, np.dtype(kind).newbyteorder("="))
    items = np.frombuffer(data, np.dtype([("len", ">i4"), ("v", kind)]), offset=_ARRAY_HEAD)
    return items["v"].astype(np.dtype(kind).newbyteorder("="))


def _slice_query(table: str, start: int, bounded: bool, box: tuple[float, float, float, float] | None = None
                 ) -> sql.Composed:
    """Each column of the points on the table's pages from ``start`` (to ``start + READ_PAGES`` when ``bounded``,
    else to the end) as one array: an array stays under PostgreSQL's 1 GB for a field. With ``box`` (west, south,
    east, north metres), only the points inside it, edges included."""
    upper = sql.SQL(" AND ctid < {}::tid").format(sql.Literal(f"({start + READ_PAGES},0)")) if bounded else sql.SQL("")
    inside = sql.SQL("") if box is None else sql.SQL(" AND x >= {} AND x <= {} AND y >= {} AND y <= {}").format(
        *(sql.Literal(float(v)) for v in (box[0], box[2], box[1], box[3])))
    return sql.SQL("SELECT array_agg(id), array_agg(lon), array_agg(lat), array_agg(x), array_agg(y), "
                   "array_agg(weight), array_agg(coalesce(observed_at, '-infinity')) FROM {} "
                   "WHERE ctid >= {}::tid{}{}").format(sql.Identifier(table), sql.Literal(f"({start},0)"), upper,
                                                       inside)


def _storage_order(ids: np.ndarray) -> np.ndarray | None:
    """The permutation putting points read in the order ``ids`` back in the order of their numbers; None when they
    are in it. Linear when the numbers are 1 to n (as an import numbers them), else a sort."""
    n = len(ids)
    if n < 2 or (np.diff(ids) > 0).all():
        return None
    if int(ids.min()) == 1 and int(ids.max()) == n:
        order = np.full(n, -1, np.int64)
        order[ids.astype(np.int64) - 1] = np.arange(n)
        if (order >= 0).all():
            return order
    return np.argsort(ids, kind="stable")


QUARTER_US = 900_000_000
"""A quarter of an hour in microseconds: every time zone's offset and change falls on one."""


def hours_of_week(micros: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """The local hour of the week (Monday 00:00 is 0, to 167) in ``zone`` of instants in microseconds since
    2000-01-01 UTC. Instants are grouped by quarter of an hour, within which the local hour cannot change: each
    quarter of the span is converted once (pandas) and the points take their quarter's hour, so that ten million
    instants cost one pass."""
    first = int(micros.min()) // QUARTER_US
    quarter = micros // QUARTER_US - first
    span = int(quarter.max()) + 1
    if span > 4 * len(micros) + 100_000:  # instants spread over more quarters than there are: one by one
        quarter, first = micros // QUARTER_US, 0
        table_of, index = np.unique(quarter, return_inverse=True)
    else:
        table_of, index = np.arange(span, dtype=np.int64), quarter
    utc = pd.DatetimeIndex(((table_of + first) * QUARTER_US + PG_EPOCH_US).astype("datetime64[us]")).tz_localize("UTC")
    local = utc.tz_convert(zone)
    table = (local.day_of_week * 24 + local.hour).to_numpy(np.int16)
    return np.asarray(table[index], np.int16)


@dataclass
class StoredPoints:
    """An area's stored demand points as arrays, in their order of storage (``id``): ``x``, ``y`` metres in the
    area's metric CRS (east, north), ``lon``, ``lat`` WGS 84 degrees, ``weight`` (orders), ``hour`` the hour of the
    week of the order's time in ``timezone`` (``weekday * 24 + hour``, Monday 0, 0–167; -1 without a time), ``ix``,
    ``iy`` the grid indices of the point's cell (squares of ``cell_size`` metres: ``floor(x / cell_size)``),
    ``first_time`` and ``last_time`` the span of the stored times (None without any); ``ids`` the points' database
    ids (ascending)."""

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray
    hour: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    cell_size: float
    first_time: pd.Timestamp | None = None
    last_time: pd.Timestamp | None = None
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.weight)

    @property
    def cell_key(self) -> np.ndarray:
        """The key of each point's cell as the stored cells have it (``200m:ix:iy``, the size as PostgreSQL prints
        a float), as an array of Python strings."""
        return np.asarray(cell_keys(self.cell_size, self.ix, self.iy), dtype=object)


def cell_keys(size: float, ix: np.ndarray, iy: np.ndarray) -> list[str]:
    """Cell keys ``{size}m:{ix}:{iy}`` (``200m:2210:22152``; the size as PostgreSQL prints a float: ``200``,
    ``150.5``)."""
    prefix = repr(float(size)).removesuffix(".0") + "m:"
    return [f"{prefix}{x}:{y}" for x, y in zip(ix.tolist(), iy.tolist(), strict=True)]


def stored_points(conn: Connection, area: AreaInfo, *, cell_size_m: float, timezone: str,
                  box: tuple[float, float, float, float] | None = None) -> StoredPoints:
    """The area's stored demand points (see ``StoredPoints``), their cells squares of ``cell_size_m`` metres. The
    hour of the week is read in ``timezone`` (an IANA name). One query reads the area's partition, its pages in
    slices of ``READ_PAGES`` (one array per column and slice), in one snapshot. ``box`` (west, south, east, north:
    metres in the area's CRS) keeps only the points inside it, edges included (a part of a partitioned run)."""
    zone = zone_of(timezone)
    raw = driver_of(conn)
    with raw.cursor(binary=True) as cur:
        for name in ("int4", "float8", "timestamptz"):
            info = psycopg.postgres.types.get(name)
            assert info is not None and info.array_oid, name
            cur.adapters.register_loader(info.array_oid, _RawArray)
        table = partition_name(area.id)
        cur.execute("SELECT coalesce(pg_relation_size(to_regclass(%s)) / current_setting('block_size')::int, 0)",
                    (table,))
        found = cur.fetchone()
        pages = int(found[0]) if found is not None else 0
        if pages == 0:
            rows: list[Any] = []
        else:  # one process reads the pages in order: no parallel scan to put back in the order of storage
            cur.execute("SELECT current_setting('max_parallel_workers_per_gather'), "
                        "set_config('max_parallel_workers_per_gather', '0', true)")
            setting = cur.fetchone()
            cur.execute(sql.SQL(" UNION ALL ").join(_slice_query(table, start, start + READ_PAGES < pages, box)
                                                     for start in range(0, pages, READ_PAGES)))
            rows = cur.fetchall()
            if setting is not None:
                cur.execute("SELECT set_config('max_parallel_workers_per_gather', %s, true)", (setting[0],))
    parts = [r for r in rows if r[0] is not None]
    ids = np.concatenate([_elements(r[0], ">i4") for r in parts]) if parts else _elements(None, ">i4")
    lon, lat, x, y, weight = (np.concatenate([_elements(r[i], ">f8") for r in parts]) if parts
                              else _elements(None, ">f8") for i in range(1, 6))
    micros = np.concatenate([_elements(r[6], ">i8") for r in parts]) if parts else _elements(None, ">i8")
    order = _storage_order(ids)
    if order is not None:  # a parallel scan, rows updated in place: back to the order of storage
        lon, lat, x, y, weight, micros, ids = (a[order] for a in (lon, lat, x, y, weight, micros, ids))
    has = micros != _NEVER
    hour = np.full(len(micros), -1, np.int16)
    first = last = None
    if has.any():
        stamps = micros[has]
        hour[has] = hours_of_week(stamps, zone)
        first, last = (pd.Timestamp(int(v) + PG_EPOCH_US, unit="us", tz="UTC") for v in (stamps.min(), stamps.max()))
    size = float(cell_size_m)
    return StoredPoints(x=x, y=y, lon=lon, lat=lat, weight=weight, hour=hour,
                        ix=np.floor(x / size).astype(np.int64), iy=np.floor(y / size).astype(np.int64),
                        cell_size=size, first_time=first, last_time=last, ids=ids.astype(np.int64))
