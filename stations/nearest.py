"""Exact nearest stations in one SQL statement on the async pool: the API's hot path.

Same answer as ``registry.nearest_stations`` (without ``open_at``, which needs Python): a KNN walk of an index
gives k candidates, the largest of their spheroid distances bounds the answer, and every station within that
bound (``ST_DWithin`` on the indexed geography column) is ranked by its exact geodesic distance in metres on the
WGS 84 spheroid, ties by registry id. Points are (lon, lat) degrees, WGS 84.

Any k stations that pass the filters bound the k-th smallest distance, so the candidates only decide how many
stations the re-check reads, never the answer. They come from the planar KNN on the geometry column (degrees):
cheaper for PostgreSQL than the geography KNN, and nearly as tight away from the poles and the antimeridian.
"""

from __future__ import annotations

from typing import Any

from yizhan.db.engine import AsyncPool
from yizhan.db.models import SRID
from yizhan.stations.registry import StationFilter
from yizhan.stations.schema import N_COLUMNS, STATION_COLUMNS, Station, station_from_row

_GEOM = f"ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), {SRID})"
_POINT = f"CAST({_GEOM} AS geography)"
_SQL_CACHE: dict[tuple[int, bool, bool, bool], str] = {}


def nearest_sql(flt: StationFilter, k: int) -> tuple[str, dict[str, Any]]:
    """The one statement (psycopg ``%(name)s`` parameters ``lon, lat`` plus the filter's) and the filter's
    parameters. Only the filters asked for appear in it, and ``k`` is written into it (not a parameter), so
    that a prepared statement's generic plan knows its LIMIT and stays on the KNN index (with a LIMIT parameter
    PostgreSQL plans a sort of every station)."""
    k = int(k)
    if k < 1:
        raise ValueError("k must be at least 1")
    where, params = flt.sql("%({})s")
    key = (k, bool(flt.amenities), flt.kind is not None, flt.area is not None)
    if key not in _SQL_CACHE:
        _SQL_CACHE[key] = (
            f"WITH knn AS (SELECT ST_Distance(s.geog, {_POINT}, true) AS d FROM stations s WHERE {where} "
            f"ORDER BY s.geom <-> {_GEOM} LIMIT {k}) "
            f"SELECT {STATION_COLUMNS}, ST_Distance(s.geog, {_POINT}, true) AS distance_m "
            "FROM stations s JOIN areas a ON a.id = s.area_id "
            f"WHERE {where} AND ST_DWithin(s.geog, {_POINT}, (SELECT max(d) FROM knn) + 1e-6) "
            f"ORDER BY distance_m, s.external_id LIMIT {k}")
    return _SQL_CACHE[key], params


async def nearest_stations_async(pool: AsyncPool, lon: float, lat: float, *, k: int = 5,
                                 amenities: list[str] | None = None, kind: str | None = None,
                                 area: str | None = None) -> list[Station]:
    """The ``k`` active stations nearest to (lon, lat) (WGS 84 degrees), exactly ordered by geodesic metres
    (``distance_m``), filtered by all ``amenities``, ``kind`` and ``area``; one round trip to the database.

    Statements without an amenity filter are prepared (a generic plan is right for them); with one, PostgreSQL
    plans each query with its values, as the amenity's frequency decides between the KNN and the GIN index.
    """
    flt = StationFilter(amenities, None, kind, area)
    sql, params = nearest_sql(flt, k)
    params.update(lon=lon, lat=lat)
    rows = await pool.fetch(sql, params, prepare=not flt.amenities)
    return [station_from_row(r, r[N_COLUMNS]) for r in rows]
