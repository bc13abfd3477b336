"""Study areas: a named county or district with a boundary (WGS 84) and the metric CRS of its analysis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Row, Table, select, text

from yizhan.db.models import SRID, Area
from yizhan.errors import InvalidInput, NotFound
from yizhan.geo.projection import utm_epsg


@dataclass(frozen=True)
class AreaInfo:
    """An area as the domain sees it. ``boundary`` is a (Multi)Polygon in EPSG:4326 (lon, lat) or None."""

    id: int
    name: str
    crs_epsg: int
    boundary: BaseGeometry | None
    display_name: str | None = None
    """The name people use (海淀区五道口街道), when one was given; ``name`` is the code name commands take."""

    @property
    def label(self) -> str:
        """What reports print: the display name with the code name beside it ("海淀区五道口街道 (wudaokou)"), or the
        code name alone when the area has no display name."""
        if self.display_name and self.display_name != self.name:
            return f"{self.display_name} ({self.name})"
        return self.name

    def boundary_m(self) -> BaseGeometry | None:
        """The boundary in the area's metric CRS (metres, x east, y north), or None without one."""
        if self.boundary is None:
            return None
        projected: BaseGeometry = gpd.GeoSeries([self.boundary], crs=SRID).to_crs(self.crs_epsg).iloc[0]
        return projected

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """For arrays of lon, lat (WGS 84 degrees): whether each point lies in the boundary (all True if none)."""
        if self.boundary is None:
            return np.ones(len(lon), dtype=bool)
        return cast(np.ndarray, shapely.covers(self.boundary, shapely.points(lon, lat)))  # arrays in, array out


_T = cast(Table, Area.__table__)


def _info(row: Row) -> AreaInfo:
    return AreaInfo(row.id, row.name, row.crs_epsg, to_shape(row.boundary) if row.boundary is not None else None,
                    row.display_name)


def _multi(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    raise InvalidInput(f"an area boundary must be a polygon, got {geom.geom_type}")


def boundary_from_file(path: Path) -> BaseGeometry:
    """Read a boundary from GeoJSON/GPKG/Shapefile; all features are merged and returned in EPSG:4326."""
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # fiona/pyogrio raise many kinds
        raise InvalidInput(f"{path}: cannot read a boundary (GeoJSON, GPKG or Shapefile expected): {exc}") from exc
    if gdf.empty:
        raise InvalidInput(f"{path}: the boundary file has no features")
    if gdf.crs is None:
        raise InvalidInput(f"{path}: the boundary file has no CRS; save it with one (EPSG:4326 expected)")
    return gdf.to_crs(SRID).union_all()


def ensure_area(conn: Connection, name: str, *, boundary: BaseGeometry | None = None,
                crs_epsg: int | None = None, source: str | None = None,
                display_name: str | None = None) -> AreaInfo:
    """Create the area ``name`` or update its boundary/CRS/display name when given; returns it.

    The CRS defaults to the UTM zone of the boundary's centroid (metres). ``display_name`` is the name people use
    (海淀区五道口街道), printed by reports and returns; an empty one clears it.
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("area name: expected 1 to 200 characters")
    existing = conn.execute(select(Area.id).where(Area.name == name)).scalar_one_or_none()
    if boundary is not None and crs_epsg is None:
        c = boundary.centroid
        crs_epsg = utm_epsg(c.x, c.y)
    values: dict[str, object] = {}
    if boundary is not None:
        values["boundary"] = from_shape(_multi(boundary), srid=SRID)
    if crs_epsg is not None:
        values["crs_epsg"] = crs_epsg
    if source is not None:
        values["source"] = source
    if display_name is not None:
        shown = display_name.strip()
        if len(shown) > 200:
            raise InvalidInput(f"display name {shown[:40]!r}…: 显示名称最多 200 个字符 expected at most 200 characters")
        values["display_name"] = shown or None
    if existing is None:
        if crs_epsg is None:
            raise InvalidInput(f"area {name!r} is new: give a boundary or a CRS (EPSG code of a metric CRS)")
        conn.execute(_T.insert().values(name=name, **values))
    elif values:
        conn.execute(_T.update().where(Area.id == existing).values(**values))
    return get_area(conn, name)


def get_area(conn: Connection, name: str) -> AreaInfo:
    """The area called ``name``; NotFound lists the areas that exist."""
    row = conn.execute(select(_T).where(_T.c.name == name)).one_or_none()
    if row is None:
        names = conn.execute(select(Area.name).order_by(Area.name)).scalars().all()
        raise NotFound(f"no area named {name!r}; areas: {', '.join(names) or 'none yet (run `yizhan demo`)'}")
    return _info(row)


def get_area_by_id(conn: Connection, area_id: int) -> AreaInfo:
    """The area with primary key ``area_id``."""
    row = conn.execute(select(_T).where(_T.c.id == area_id)).one_or_none()
    if row is None:
        raise NotFound(f"no area with id {area_id}")
    return _info(row)


def resolve_area(conn: Connection, name: str | None) -> AreaInfo:
    """The named area, or the only one when no name is given."""
    if name:
        return get_area(conn, name)
    names = conn.execute(select(Area.name).order_by(Area.name)).scalars().all()
    if len(names) == 1:
        return get_area(conn, names[0])
    if not names:
        raise NotFound("no area yet: create one with `yizhan area create NAME --boundary FILE` or run `yizhan demo`")
    raise InvalidInput(f"several areas exist ({', '.join(names)}): name one with --area")


def list_areas(conn: Connection) -> list[AreaInfo]:
    """All areas, by name."""
    return [_info(r) for r in conn.execute(select(_T).order_by(_T.c.name))]


def remember_extract(conn: Connection, area_id: int, path: Path) -> None:
    """Remember ``path`` (an .osm/.osm.pbf file, stored absolute) as the extract the area's streets were built from."""
    conn.execute(text("INSERT INTO area_extracts (area_id, path) VALUES (:a, :p) ON CONFLICT (area_id) DO UPDATE "
                      "SET path = EXCLUDED.path, recorded_at = now()"), {"a": area_id, "p": str(path.resolve())})


def remembered_extract(conn: Connection, area_id: int) -> Path | None:
    """The extract the area's streets were last built from (``remember_extract``), or None when none was recorded.
    The path may no longer exist on this machine: the caller checks."""
    stored = conn.execute(text("SELECT path FROM area_extracts WHERE area_id = :a"), {"a": area_id}).scalar()
    return Path(stored) if stored else None


UNIT_NAME_FIELDS = ("name", "名称", "township", "街道", "乡镇", "district", "区县", "name_zh", "NAME")


def import_units(conn: Connection, area: AreaInfo, units: gpd.GeoDataFrame, *, name_field: str | None = None,
                 level: str | None = None, source: str = "units") -> int:
    """Replace the area's administrative units (districts/townships) by ``units`` (polygons, any CRS).

    The unit name comes from ``name_field`` or the first of ``UNIT_NAME_FIELDS`` present. Returns the count.
    """
    if units.crs is None:
        raise InvalidInput(f"{source}: the units file has no CRS; save it with one (EPSG:4326 expected)")
    field = name_field or next((f for f in UNIT_NAME_FIELDS if f in units.columns), None)
    if field is None or field not in units.columns:
        columns = ", ".join(map(str, units.columns))
        raise InvalidInput(f"{source}: no name column; pass --name-field (columns: {columns})")
    bad = [i + 1 for i, g in enumerate(units.geometry) if g is None or g.geom_type not in ("Polygon", "MultiPolygon")]
    if bad:
        raise InvalidInput(f"{source}: feature(s) {bad[:20]} are not polygons")
    names = units[field].astype(str).str.strip()
    dup = names[names.duplicated()].unique().tolist()
    if dup or (names == "").any():
        raise InvalidInput(f"{source}: unit names must be unique and non-empty; repeated: {dup[:20]}")
    gdf = units.to_crs(SRID)
    conn.execute(text("DELETE FROM admin_units WHERE area_id = :a"), {"a": area.id})
    conn.execute(text(f"INSERT INTO admin_units (area_id, name, level, geom) "
                      f"VALUES (:a, :n, :l, ST_Multi(ST_GeomFromText(:g, {SRID})))"),
                 [{"a": area.id, "n": n, "l": level, "g": _multi(g).wkt}
                  for n, g in zip(names, gdf.geometry, strict=True)])
    return len(gdf)


def units_frame(conn: Connection, area_id: int) -> gpd.GeoDataFrame:
    """The area's administrative units in EPSG:4326, by name (empty when none were imported)."""
    df = gpd.read_postgis(text("SELECT name, level, geom FROM admin_units WHERE area_id = :a ORDER BY name"), conn,
                          geom_col="geom", crs=SRID, params={"a": area_id})
    return df.rename_geometry("geometry")


def sector_units(boundary: BaseGeometry) -> gpd.GeoDataFrame:
    """Four named sectors (东北/西北/东南/西南片区) of a boundary's bounding box, for areas without townships."""
    w, s, e, n = boundary.bounds
    mx, my = (w + e) / 2, (s + n) / 2
    cells = {"西南片区": (w, s, mx, my), "东南片区": (mx, s, e, my),
             "西北片区": (w, my, mx, n), "东北片区": (mx, my, e, n)}
    return gpd.GeoDataFrame({"name": list(cells)}, geometry=[box(*b).intersection(boundary) for b in cells.values()],
                            crs=SRID)
