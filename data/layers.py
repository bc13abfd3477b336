"""Demand layers: each demand import of an area is a layer whose cells are stored once.

A coverage run refers to the layer it analysed and stores only its results per cell, so a run stays readable
after the area's demand is imported again: the import retires the old layer, which is kept while a run refers to it
and deleted (with its cells) otherwise. The area's current cells are the view ``area_cells``.

``demand_cells`` is partitioned by layer (migration 0015): each layer's cells are a table of their own,
``demand_cells_l{id}``, created in the import's transaction and attached to ``demand_cells``; deleting a layer drops
it. A table created in the writing transaction is loaded without the write-ahead log (``wal_level=minimal``) and
its indexes are built once, when it is attached, over all its rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, text

from yizhan.areas import AreaInfo

CELL_COLUMNS = """
    id integer NOT NULL DEFAULT nextval('demand_cells_id_seq'::regclass), area_id integer NOT NULL,
    cell_key character varying(60) NOT NULL, cell_size_m double precision NOT NULL, weight double precision NOT NULL,
    points integer NOT NULL, geom geometry(Polygon, 4326) NOT NULL, centroid geometry(Point, 4326) NOT NULL,
    layer_id integer NOT NULL, x double precision NOT NULL, y double precision NOT NULL"""
"""The columns of ``demand_cells`` in their order (as migration 0015 made it: a partition must match them)."""


def cells_table(layer_id: int) -> str:
    """The partition of ``demand_cells`` holding layer ``layer_id``'s cells."""
    return f"demand_cells_l{int(layer_id)}"


def new_layer(conn: Connection, area: AreaInfo, *, source: str, cell_size_m: float | None,
              attach: bool = True, params: Mapping[str, Any] | None = None) -> int:
    """Retire the area's current layer and open a new current one (in the caller's transaction); its id.

    Its cells' table (``cells_table``) is created empty; with ``attach`` it is attached to ``demand_cells`` at once
    (the caller then writes its cells through ``demand_cells``), else the caller loads the table itself and then
    attaches it (``attach_cells``), which builds its indexes once over the loaded rows. The cells carry this id;
    ``close_layer`` records their count and weight. ``params`` says how the cells are made (``{"h3": True,
    "h3_res": 9}`` for H3 hexagons: ``data.h3_cells``), stored as the layer's ``params``."""
    conn.execute(text("UPDATE demand_layers SET retired_at = now() WHERE area_id = :a AND retired_at IS NULL"),
                 {"a": area.id})
    layer_id = conn.execute(text("INSERT INTO demand_layers (area_id, source, cell_size_m, params) "
                                 "VALUES (:a, :s, :c, CAST(:p AS jsonb)) RETURNING id"),
                            {"a": area.id, "s": source, "c": cell_size_m,
                             "p": json.dumps(dict(params or {}))}).scalar_one()
    name = cells_table(layer_id)
    # the columns spelled out, not LIKE demand_cells (which would lock the parent until commit), and a table of
    # its own attached afterwards, not PARTITION OF (which locks every reader of demand_cells out until commit);
    # the CHECK spares the scan attaching would make
    conn.execute(text(f"CREATE TABLE {name} ({CELL_COLUMNS}, CONSTRAINT {name}_layer CHECK "
                      f"(layer_id = {int(layer_id)}))"))
    if attach:
        attach_cells(conn, int(layer_id))
    return int(layer_id)


def attach_cells(conn: Connection, layer_id: int) -> None:
    """Attach layer ``layer_id``'s table of cells (made by ``new_layer``) to ``demand_cells``, building its
    indexes (in the caller's transaction; readers of ``demand_cells`` are not locked out)."""
    conn.execute(text(f"ALTER TABLE demand_cells ATTACH PARTITION {cells_table(layer_id)} "
                      f"FOR VALUES IN ({int(layer_id)})"))


LATTICE_SQL = """
    cell_size_m > 0 AND NOT EXISTS (
        SELECT 1 FROM demand_cells c WHERE c.layer_id = {layer} AND c.cell_key IS DISTINCT FROM
               {size} || 'm:' || floor(c.x / {size})::bigint || ':' || floor(c.y / {size})::bigint)"""
"""Whether a layer's cells are the lattice squares their keys ``{size}m:{ix}:{iy}`` name (an import of points
makes them so; an imported grid's cells are its own polygons): every key matches its centre ``x``, ``y``."""


def close_layer(conn: Connection, layer_id: int, *, lattice: bool | None = None) -> tuple[int, float]:
    """Record the layer's cell count, total weight and whether it is a lattice (``LATTICE_SQL``, unless the
    caller says it with ``lattice``: cells it made as the lattice's squares); delete the area's retired layers no
    run refers to (their tables of cells are dropped). The count and the weight."""
    is_lattice = (LATTICE_SQL.format(layer="l.id", size="l.cell_size_m") if lattice is None
                  else "l.cell_size_m > 0" if lattice else "false")
    cells, weight = conn.execute(text(
        "UPDATE demand_layers l SET cells = t.n, weight = t.w, lattice = " + is_lattice + " FROM (SELECT "
        "count(*) AS n, coalesce(sum(weight), 0) AS w FROM demand_cells WHERE layer_id = :l) t WHERE l.id = :l "
        "RETURNING l.cells, l.weight"),
        {"l": layer_id}).one()
    conn.execute(text("""
        DELETE FROM demand_layers l
        WHERE l.area_id = (SELECT area_id FROM demand_layers WHERE id = :l) AND l.retired_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM coverage_runs r WHERE r.layer_id = l.id)"""), {"l": layer_id})
    return int(cells), float(weight)


