"""``GET /places``: the places a rider can type on the rider's page (``stations.places``), matched offline from
what the registry and the areas name; public and rate-limited like the riders' routes."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from yizhan.routes.deps import DatabaseDep, RiderLimit, require_area
from yizhan.stations.places import MAX_PLACES, MAX_QUERY_CHARS, Place, StationNames, find_places, names_of

router = APIRouter(tags=["pages"])


@router.get("/places", include_in_schema=False)
async def places(_: RiderLimit, db: DatabaseDep,
                 q: Annotated[str, Query(description=f"a place's name, at most {MAX_QUERY_CHARS} characters")],
                 area: Annotated[str | None, Query(max_length=200)] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_PLACES)] = 8) -> JSONResponse:
    """The places whose names contain ``q`` (characters: 五道口, 成府路, a station's or its host's name), best first:
    ``{"q", "area", "places": [{name, kind, kind_zh, kind_en, detail, station_id, area, lon, lat}]}`` with lon/lat
    in WGS 84 degrees; 404 for an unknown ``area``, 422 (in Chinese and English) for a ``q`` too long or with
    nothing to match. The stations' names are matched in memory once the in-process station index and its names
    are loaded (the pool that starts the index is made here if no rider has asked yet), else in the database;
    ``X-Places-Source`` says which (``index`` or ``database``)."""
    await db.pool()  # starts the station index with it
    keeper = db.station_index
    index = keeper.current() if keeper is not None else None

    def found() -> tuple[list[Place], str]:
        eng = db.engine()
        require_area(eng, area)
        names: StationNames | None = names_of(index) if index is not None else None  # None while being built
        with eng.connect() as conn:
            return find_places(conn, q, area=area, limit=limit, names=names), "database" if names is None else "index"

    got, source = await anyio.to_thread.run_sync(found)
    body: dict[str, Any] = {"q": q, "area": area, "places": [
        {"name": p.name, "kind": p.kind, "kind_zh": p.kind_zh, "kind_en": p.kind_en, "detail": p.detail,
         "station_id": p.station_id, "area": p.area, "lon": round(p.lon, 7), "lat": round(p.lat, 7)} for p in got]}
    return JSONResponse(body, headers={"Cache-Control": "max-age=60", "X-Places-Source": source})
