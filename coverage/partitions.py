"""Partition plans: an area's demand cells split into parts that can be computed apart, each with a halo around it.

A part owns a disjoint set of the area's demand cells and a region of the plane (its ``clip``) for the covered
area; together the parts own every cell once and their regions tile the plane around the area. A part is computed
from the stations (and streets) within its ``box`` grown by a halo: a straight line or a street path of length d
from a cell never leaves the disc of radius d around it, so with a halo of h every distance up to h is exactly what
the whole area gives (``coverage.partitioned`` says which halo each figure needs).

Two plans:

- ``tiles``: rectangles from recursive median splits of the cells' centres (each split cuts the longer side of its
  rectangle so that both sides get their share of the cells): balanced by cell count. A cell belongs to the tile
  holding its centre (``demand_cells.x``, ``y``: metres in the area CRS, the same numbers a run measures from):
  ``west <= x < east`` and ``south <= y < north``.
- ``units``: the administrative units (``admin_units``) grouped into parts balanced by cell count (largest first,
  each to the lightest part). A cell belongs to the unit covering its stored centre point (``demand_cells.centroid``;
  the first unit by name, then id, on a shared border); cells in no unit go to the part marked ``unowned``.

Metres in the area's metric CRS (x east, y north); boxes as (west, south, east, north).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from yizhan.areas import AreaInfo
from yizhan.coverage.cell_coverage import NETWORK_LIMIT_FACTOR
from yizhan.coverage.runs import layer_cell_size
from yizhan.data.demand import MAX_CELL_SIZE_M
from yizhan.data.h3_cells import layer_reach_m
from yizhan.db.engine import driver_rows
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput
from yizhan.settings import MAX_RADIUS_M

PLANS = ("tiles", "units")
MAX_PARTS = 4096
"""Most parts a plan may have."""
OUTER_M = 1.0
"""Metres the plan's outer box reaches beyond the outermost cell centre, station and boundary vertex."""
UNIT_BOX_MARGIN_M = 10.0
"""Metres (plus 0.1 % of its size) a units part's box is grown by: a unit drawn in WGS 84 has straight edges in
degrees, slightly curved in the metric CRS, so the box of its projected vertices could miss a centre by a hair."""
BoxT = tuple[float, float, float, float]


@dataclass(frozen=True)
class Part:
    """One part of a plan.

    ``index`` its position (0-based); ``box`` (west, south, east, north) metres: for tiles the half-open rectangle
    whose stored cell centres it owns, for units a box holding every stored centre it owns; ``clip`` the region
    (WKB hex, metres) its covered area is cut to, disjoint from the other parts' and together covering the plane
    around the area; ``units`` the ids of its administrative units (units plans); ``unowned`` whether it also owns
    the cells in no unit; ``cells`` how many cells it owned when planned."""

    index: int
    box: BoxT
    clip: str
    units: tuple[int, ...] = ()
    unowned: bool = False
    cells: int = 0

    def clip_geometry(self) -> BaseGeometry:
        """The region of the part's covered area (metres, area CRS)."""
        return shapely.from_wkb(bytes.fromhex(self.clip))


@dataclass(frozen=True)
class PartitionPlan:
    """An area's cells (those of its demand layer ``layer_id``) in parts: ``by`` one of ``PLANS``; ``outer``
    (west, south, east, north) metres the box holding every cell centre, station and boundary vertex of the area when
    planned; ``margin_m`` how far a cell's demand point may lie from the cell's centre (half the cell's diagonal),
    which the halo of a run measured on points adds; ``cells`` the cells planned."""

    area_id: int
    layer_id: int
    crs_epsg: int
    by: str
    parts: tuple[Part, ...]
    outer: BoxT
    margin_m: float
    cells: int

    def to_json(self) -> str:
        """The plan as JSON (a job folder keeps it beside the parts' results)."""
        return json.dumps(asdict(self), sort_keys=True)

SERVICE_REACH_M = 50.0
"""Beyond the radius a run along the streets looks at least (twice the service area's 25 m buffer around the reached
streets): the halos of its parts reach this far past the radius even where the search limit would not."""


def street_parts_halo(radius_m: float, max_snap_m: float, cell_size_m: float | None) -> float:
    """Metres of streets each tile of an area's street graphs per partition (``coverage.streets.build_street_parts``)
    must hold around it for runs along the streets at ``radius_m``: the search limit (``NETWORK_LIMIT_FACTOR`` x the
    radius, at least the radius and a service area's reach of 50 m), the snapping distance ``max_snap_m``, half the
    diagonal of the area's demand cells of ``cell_size_m`` metres (a demand point's distance from its cell's centre;
    the largest cell allowed when the area has no demand yet) and 100 m to spare: more than a run in parts needs
    (``coverage.partitioned.halos``)."""
    cell = cell_size_m if cell_size_m is not None else MAX_CELL_SIZE_M
    return max(NETWORK_LIMIT_FACTOR * radius_m, radius_m + SERVICE_REACH_M) + max_snap_m + cell * 2**0.5 / 2 + 100


def grown(box: BoxT, halo_m: float) -> BoxT:
    """``box`` (west, south, east, north) grown by ``halo_m`` metres on every side: it holds every point within
    ``halo_m`` (straight line) of the box."""
    w, s, e, n = box
    return (w - halo_m, s - halo_m, e + halo_m, n + halo_m)


def median_tiles(xy: np.ndarray, n_parts: int, outer: BoxT) -> list[BoxT]:
    """``n_parts`` rectangles tiling ``outer`` (west, south, east, north; metres), balanced by the points ``xy``
    ((n, 2) metres, x east, y north) they hold: each step cuts the longer side of a rectangle at the point that gives
    both sides their share (``n_parts // 2`` against the rest). A point on a cut belongs to the east or north side.
    Ties at a cut (a column of cells) may leave a side lighter; an empty rectangle is a valid tile."""
    if n_parts < 1:
        raise InvalidInput(f"parts {n_parts}: expected at least 1")
    if n_parts == 1:
        return [outer]
    w, s, e, n = outer
    axis = 0 if (e - w) >= (n - s) else 1
    lo, hi = (w, e) if axis == 0 else (s, n)
    first = n_parts // 2
    values = np.sort(xy[:, axis]) if len(xy) else np.empty(0)
    k = round(len(values) * first / n_parts)
    cut = float(values[k]) if 0 < k < len(values) else (lo + hi) / 2
    cut = min(max(cut, lo), hi)
    below = xy[:, axis] < cut
    if axis == 0:
        a, b = (w, s, cut, n), (cut, s, e, n)
    else:
        a, b = (w, s, e, cut), (w, cut, e, n)
    return median_tiles(xy[below], first, a) + median_tiles(xy[~below], n_parts - first, b)


def balanced_groups(counts: np.ndarray, n_parts: int) -> list[list[int]]:
    """Items (by position in ``counts``) in ``n_parts`` groups of about equal total count: largest first, each to
    the group with the least so far (the lowest group on a tie). Groups may be empty when items are fewer."""
    groups: list[list[int]] = [[] for _ in range(n_parts)]
    load = np.zeros(n_parts)
    for i in np.argsort(-np.asarray(counts, dtype=float), kind="stable"):
        g = int(np.argmin(load))
        groups[g].append(int(i))
        load[g] += counts[i]
    return groups


def numbers(conn: Connection, sql: str, params: dict[str, Any], width: int) -> np.ndarray:
    """The rows of a query of ``width`` numeric columns as an (n, width) float array."""
    # the driver's plain tuples: a SQLAlchemy Row per row costs more than the numbers
    rows = driver_rows(conn, sql, params)
    return np.array(rows, dtype=float).reshape(-1, width) if rows else np.empty((0, width))


def current_layer_id(conn: Connection, info: AreaInfo) -> int:
    """The id of ``info``'s current demand layer (its cells as last imported), or InvalidInput without demand."""
    layer = conn.execute(text("SELECT id FROM demand_layers WHERE area_id = :a AND retired_at IS NULL"),
                         {"a": info.id}).scalar()
    if layer is None:
        raise InvalidInput(f"区域 {info.name!r} 没有需求网格，请先导入需求 / area {info.name!r} has no demand cells: "
                           "import demand first (`yizhan demand import`)")
    return int(layer)


def plan_partitions(conn: Connection, info: AreaInfo, n_parts: int, *, by: str = "tiles",
                    tiles: np.ndarray | None = None) -> PartitionPlan:
    """The partition plan of ``info``'s current demand cells in ``n_parts`` parts (``by`` one of ``PLANS``;
    ``units`` needs the area's administrative units). Reads numbers only: the cells' centres (``x``, ``y``), the
    stations' and the boundary's coordinates, and for units their polygons.

    ``tiles`` ((k, 4) metres of the area CRS, west, south, east, north; disjoint): the parts are these rectangles
    (those of ``geo.street_parts``' graphs, so that part i is computed on graph i), ``n_parts`` ignored; every cell
    centre must lie in one of them (InvalidInput naming how many do not). The regions of the outermost ones reach
    out as with median tiles."""
    if by not in PLANS:
        raise InvalidInput(f"分区方式 partitions by {by!r}: 可用 expected one of {', '.join(PLANS)}")
    if not 1 <= n_parts <= MAX_PARTS:
        raise InvalidInput(f"分区数 parts {n_parts}: 应为 1 到 {MAX_PARTS} / expected 1 to {MAX_PARTS}")
    crs = info.crs_epsg
    layer = current_layer_id(conn, info)
    xy = numbers(conn, "SELECT x, y FROM demand_cells WHERE layer_id = :l", {"l": layer}, 2)
    if not len(xy):
        raise InvalidInput(f"区域 {info.name!r} 没有需求网格，请先导入需求 / area {info.name!r} has no demand cells: "
                           "import demand first (`yizhan demand import`)")
    size = layer_cell_size(conn, layer)
    st = numbers(conn, "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(geom, :crs) AS p FROM stations "
                 "WHERE area_id = :a) t", {"a": info.id, "crs": crs}, 2)
    extent = [xy, st]
    if info.boundary is not None:
        to_m = Transformer.from_crs(SRID, crs, always_xy=True)
        bxy = shapely.get_coordinates(info.boundary)
        extent.append(np.column_stack(to_m.transform(bxy[:, 0], bxy[:, 1])))
    everything = np.concatenate(extent)
    outer = (float(everything[:, 0].min()) - OUTER_M, float(everything[:, 1].min()) - OUTER_M,
             float(everything[:, 0].max()) + OUTER_M, float(everything[:, 1].max()) + OUTER_M)
    # a cell's points lie in its square: at most half its diagonal from its centre (plus a metre of rounding)
    margin = float(size) * np.sqrt(0.5) + 1.0 if size else 1.0
    margin = layer_reach_m(conn, layer, crs) or margin  # a hexagon's points: as far as its farthest vertex
    if tiles is not None:
        boxes = [_box(t) for t in np.asarray(tiles, dtype=float).reshape(-1, 4)]
        owned = np.zeros(len(xy), dtype=np.int64)
        for b in boxes:
            owned += inside(xy, b)
        if (owned != 1).any():
            raise InvalidInput(f"{int((owned == 0).sum()):,} 个需求网格不在路网分区内 / {int((owned == 0).sum()):,} "
                               f"demand cells lie in no tile of the street parts (and {int((owned > 1).sum()):,} in "
                               "two): build the street parts on tiles covering the area's cells")
        hull = _hull(boxes)
        outer = (min(outer[0], hull[0]), min(outer[1], hull[1]), max(outer[2], hull[2]), max(outer[3], hull[3]))
        inner = (hull[0] + OUTER_M, hull[1] + OUTER_M, hull[2] - OUTER_M, hull[3] - OUTER_M)
        parts = tuple(Part(index=i, box=b, clip=_clip_of(b, inner).wkb_hex, cells=int(inside(xy, b).sum()))
                      for i, b in enumerate(boxes))
    elif by == "tiles":
        boxes = median_tiles(xy, n_parts, outer)
        parts = tuple(Part(index=i, box=b, clip=_clip_of(b, outer).wkb_hex, cells=int(inside(xy, b).sum()))
                      for i, b in enumerate(boxes))
    else:
        parts = _unit_parts(conn, info, layer, n_parts, outer, margin)
    return PartitionPlan(area_id=info.id, layer_id=layer, crs_epsg=crs, by=by, parts=parts, outer=outer,
                         margin_m=margin, cells=len(xy))


UNIT_OWNER_SQL = """(SELECT u.id FROM admin_units u WHERE u.area_id = c.area_id AND ST_Covers(u.geom, c.centroid)
                     ORDER BY u.name, u.id LIMIT 1)"""
"""The unit owning a cell ``c`` of ``demand_cells``: the first by name, then id, covering its stored centre point
(NULL for none). Every part of a units plan decides with this one expression."""


def _unit_parts(conn: Connection, info: AreaInfo, layer: int, n_parts: int, outer: BoxT,
                margin_m: float) -> tuple[Part, ...]:
    crs = info.crs_epsg
    boundary_m = None
    if info.boundary is not None:
        to_m = Transformer.from_crs(SRID, crs, always_xy=True)
        boundary_m = shapely.transform(info.boundary, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1])))
    units = conn.execute(text("""
        SELECT id, ST_AsBinary(ST_Transform(geom, :crs)) FROM admin_units WHERE area_id = :a ORDER BY name, id"""),
        {"a": info.id, "crs": crs}).all()
    if not units:
        raise InvalidInput(f"区域 {info.name!r} 没有行政单元，无法按单元分区 / area {info.name!r} has no "
                           "administrative units to partition by: import them (`yizhan units import`) or partition "
                           "by tiles")
    ids = [int(r[0]) for r in units]
    polys = np.asarray([shapely.from_wkb(bytes(r[1])) for r in units], dtype=object)
    owned: dict[int | None, int] = dict(conn.execute(text(f"""
        SELECT owner, count(*) FROM (SELECT {UNIT_OWNER_SQL} AS owner FROM demand_cells c WHERE c.layer_id = :l) t
        GROUP BY owner"""), {"l": layer}).all())
    stray = conn.execute(text(f"""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
            SELECT ST_Extent(ST_MakePoint(c.x, c.y)) AS e FROM demand_cells c
            WHERE c.layer_id = :l AND {UNIT_OWNER_SQL} IS NULL) t"""), {"l": layer}).one()
    counts = np.asarray([owned.get(i, 0) for i in ids], dtype=float)
    groups = balanced_groups(counts, n_parts)
    unowned_cells = int(owned.get(None, 0))
    lightest = int(np.argmin([counts[g].sum() for g in groups]))
    # each unit's own region: what earlier units (by name, id) do not already hold, as the cells' owner is decided
    regions = []
    held: BaseGeometry = shapely.Polygon()
    for p in polys:
        regions.append(shapely.difference(p, held))
        held = shapely.union(held, p)
    # the rest of the plane that matters (the boundary, else all around) in pieces, each to the part whose units'
    # box it overlaps most (the nearest without overlap); that part's box grows to hold it
    unit_boxes = [[polys[j].bounds for j in g] for g in groups]
    if stray[0] is not None:
        unit_boxes[lightest].append(_box(stray))
    part_boxes = [shapely.box(*_hull(b)) if b else shapely.Polygon() for b in unit_boxes]
    within = boundary_m if boundary_m is not None else shapely.box(*grown(outer, _reach(outer)))
    rest = shapely.difference(within, held)
    pieces: list[list[BaseGeometry]] = [[regions[j] for j in g] for g in groups]
    for piece in shapely.get_parts(rest):
        if piece.is_empty or piece.area <= 0:
            continue
        overlap = [shapely.intersection(piece, b).area if not b.is_empty else -1.0 for b in part_boxes]
        if max(overlap) <= 0:
            overlap = [-shapely.distance(piece, b) if not b.is_empty else -np.inf for b in part_boxes]
        to = int(np.argmax(overlap))
        pieces[to].append(piece)
        unit_boxes[to].append(piece.bounds)
    parts = []
    for i, g in enumerate(groups):
        clip = shapely.union_all(pieces[i]) if pieces[i] else shapely.Polygon()
        if unit_boxes[i]:
            box = _hull(unit_boxes[i])
            box = grown(box, margin_m + UNIT_BOX_MARGIN_M + 0.001 * max(box[2] - box[0], box[3] - box[1]))
        else:
            box = (outer[0], outer[1], outer[0], outer[1])
        parts.append(Part(index=i, box=box, clip=clip.wkb_hex, units=tuple(ids[j] for j in g),
                          unowned=i == lightest, cells=int(counts[g].sum()) + (unowned_cells if i == lightest else 0)))
    return tuple(parts)


def _hull(boxes: list[BoxT] | list[tuple[float, ...]]) -> BoxT:
    """The box holding all ``boxes`` (west, south, east, north)."""
    b = np.asarray(boxes, dtype=float)
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))


def _reach(outer: BoxT) -> float:
    """How far beyond the outer box a part's region reaches: farther than any disc or service area of a station
    inside it (the largest radius accepted, plus the box's own size)."""
    return 2 * MAX_RADIUS_M + max(outer[2] - outer[0], outer[3] - outer[1])


def _clip_of(box: BoxT, outer: BoxT) -> BaseGeometry:
    """A tile's region: the tile, its sides on the outer box pushed out by ``_reach`` so that the tiles' regions
    cover the plane around the area (every station lies inside the outer box)."""
    far = _reach(outer)
    w, s, e, n = box
    return shapely.box(w - far if w <= outer[0] else w, s - far if s <= outer[1] else s,
                       e + far if e >= outer[2] else e, n + far if n >= outer[3] else n)


def inside(xy: np.ndarray, box: BoxT) -> np.ndarray:
    """Which points ``xy`` ((n, 2) metres) a tile ``box`` owns: ``west <= x < east`` and ``south <= y < north``."""
    w, s, e, n = box
    return (xy[:, 0] >= w) & (xy[:, 0] < e) & (xy[:, 1] >= s) & (xy[:, 1] < n)


def _box(v: Any) -> BoxT:
    w, s, e, n = (float(x) for x in v)
    return (w, s, e, n)
