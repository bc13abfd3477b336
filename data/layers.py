"""Demand layers: each demand import of an area is a layer whose cells are stored once.

A coverage run refers to the layer it analysed and stores only its results per cell, so a run stays readable
after the area's demand is imported again: the import retires the old layer, which is kept while a run refers to it
and deleted (with its cells) otherwise. The area's current cells are the view ``area_cells``.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from yizhan.areas import AreaInfo


def new_layer(conn: Connection, area: AreaInfo, *, source: str, cell_size_m: float | None) -> int:
    """Retire the area's current layer and open a new current one (in the caller's transaction); its id.

    The cells the caller then writes carry this id; ``close_layer`` records their count and weight."""
    conn.execute(text("UPDATE demand_layers SET retired_at = now() WHERE area_id = :a AND retired_at IS NULL"),
                 {"a": area.id})
    layer_id = conn.execute(text("INSERT INTO demand_layers (area_id, source, cell_size_m) VALUES (:a, :s, :c) "
                                 "RETURNING id"), {"a": area.id, "s": source, "c": cell_size_m}).scalar_one()
    return int(layer_id)


LATTICE_SQL = """
    cell_size_m > 0 AND NOT EXISTS (
        SELECT 1 FROM demand_cells c WHERE c.layer_id = {layer} AND c.cell_key IS DISTINCT FROM
               {size} || 'm:' || floor(c.x / {size})::bigint || ':' || floor(c.y / {size})::bigint)"""
"""Whether a layer's cells are the lattice squares their keys ``{size}m:{ix}:{iy}`` name (an import of points
makes them so; an imported grid's cells are its own polygons): every key matches its centre ``x``, ``y``."""


def close_layer(conn: Connection, layer_id: int) -> tuple[int, float]:
    """Record the layer's cell count, total weight and whether it is a lattice (``LATTICE_SQL``); delete the
    area's retired layers no run refers to. The count and the weight."""
    cells, weight = conn.execute(text(
        "UPDATE demand_layers l SET cells = t.n, weight = t.w, lattice = " + LATTICE_SQL.format(
            layer="l.id", size="l.cell_size_m") + " FROM (SELECT count(*) AS n, coalesce(sum(weight), 0) "
        "AS w FROM demand_cells WHERE layer_id = :l) t WHERE l.id = :l RETURNING l.cells, l.weight"),
        {"l": layer_id}).one()
    conn.execute(text("""
        DELETE FROM demand_layers l
        WHERE l.area_id = (SELECT area_id FROM demand_layers WHERE id = :l) AND l.retired_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM coverage_runs r WHERE r.layer_id = l.id)"""), {"l": layer_id})
    return int(cells), float(weight)


