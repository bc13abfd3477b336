"""demand layers: cells stored once per import, runs store numeric results only

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 16:30:00

- ``demand_layers``: one row per demand import of an area (its source, cell size, cells and total weight, and
  ``lattice``: its cells are the squares ``size·ix … size·(ix+1)`` × ``size·iy …`` of the area's CRS that their
  keys ``{size}m:{ix}:{iy}`` name, as an import of points makes them, not an imported grid). The
  area's current layer is the one not retired (at most one per area); an import retires the previous one, which is
  kept while a stored run refers to it and deleted with its cells otherwise.
- ``demand_cells``: ``layer_id`` (the import the cell belongs to) and ``x``, ``y``: the cell's centre in metres in
  its area's CRS (x east, y north), so a run reads numbers, not WKB. A cell key is unique within its layer.
- ``area_cells``: a view of the cells of each area's current layer (what "the area's cells" means everywhere);
  ``run_cells_in_layer``: a run's results beside its cells' key, weight, polygon and centre.
- ``coverage_runs.layer_id``: the layer a run analysed. ``run_cells`` keeps only the run's results per cell
  (``cell_id`` of ``demand_cells``; covered, nearest station, distances, hours, accessibility): the key, weight
  and polygon are the layer's. ``run_id`` and ``nearest_station_id`` are plain numbers now: checking a foreign key
  per stored row made storing a run slow. A trigger deletes a run's cells with the run (also when its area goes);
  a reader joins the stations and finds none for a removed station, as before.

Existing runs keep their cells: each run's copied cells become a retired layer of its own, and an area's current
cells its current layer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "demand_layers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("area_id", sa.Integer(), sa.ForeignKey("areas.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.Text(), nullable=False, server_default=""),
        sa.Column("cell_size_m", sa.Float(), nullable=True),
        sa.Column("cells", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("weight", sa.Float(), nullable=False, server_default="0"),
        sa.Column("lattice", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_demand_layers_area_id", "demand_layers", ["area_id"])
    op.execute("CREATE UNIQUE INDEX uq_demand_layers_current ON demand_layers (area_id) WHERE retired_at IS NULL")
    op.add_column("demand_cells", sa.Column("layer_id", sa.Integer(), nullable=True))
    op.add_column("demand_cells", sa.Column("x", sa.Float(), nullable=True))
    op.add_column("demand_cells", sa.Column("y", sa.Float(), nullable=True))
    op.add_column("coverage_runs", sa.Column("layer_id", sa.Integer(), nullable=True))

    # the areas' current cells: one current layer each
    op.execute("""
        INSERT INTO demand_layers (area_id, source, cell_size_m, cells, weight)
        SELECT area_id, '', max(cell_size_m), count(*), sum(weight) FROM demand_cells GROUP BY area_id""")
    op.execute("""
        UPDATE demand_cells c SET layer_id = l.id,
               x = ST_X(ST_Centroid(ST_Transform(c.geom, a.crs_epsg))),
               y = ST_Y(ST_Centroid(ST_Transform(c.geom, a.crs_epsg)))
        FROM demand_layers l JOIN areas a ON a.id = l.area_id WHERE l.area_id = c.area_id""")
    # each stored run's own copy of its cells: a retired layer of its own
    op.execute("""
        INSERT INTO demand_layers (area_id, source, cell_size_m, cells, weight, created_at, retired_at)
        SELECT r.area_id, 'run ' || r.id, (r.params->>'cell_size_m')::float8, r.cells, r.demand_total, r.created_at,
               r.created_at
        FROM coverage_runs r ORDER BY r.id""")
    op.execute("""
        UPDATE coverage_runs r SET layer_id = l.id FROM demand_layers l
        WHERE l.area_id = r.area_id AND l.retired_at IS NOT NULL AND l.source = 'run ' || r.id""")
    op.execute("""
        INSERT INTO demand_cells (area_id, layer_id, cell_key, cell_size_m, weight, points, geom, centroid, x, y)
        SELECT r.area_id, r.layer_id, rc.cell_key, coalesce(l.cell_size_m, sqrt(ST_Area(ST_Transform(rc.geom,
               a.crs_epsg)))), rc.weight, 0, rc.geom, ST_PointOnSurface(rc.geom),
               ST_X(ST_Centroid(ST_Transform(rc.geom, a.crs_epsg))), ST_Y(ST_Centroid(ST_Transform(rc.geom,
               a.crs_epsg)))
        FROM run_cells rc JOIN coverage_runs r ON r.id = rc.run_id JOIN areas a ON a.id = r.area_id
        JOIN demand_layers l ON l.id = r.layer_id""")
    op.execute("UPDATE demand_layers SET source = 'run cells' WHERE source LIKE 'run %'")
    op.execute("""
        UPDATE demand_layers l SET lattice = NOT EXISTS (
            SELECT 1 FROM demand_cells c WHERE c.layer_id = l.id AND c.cell_key IS DISTINCT FROM
                   l.cell_size_m || 'm:' || floor(c.x / l.cell_size_m)::bigint || ':'
                   || floor(c.y / l.cell_size_m)::bigint)
        WHERE l.cell_size_m > 0""")

    op.alter_column("demand_cells", "layer_id", nullable=False)
    op.alter_column("demand_cells", "x", nullable=False)
    op.alter_column("demand_cells", "y", nullable=False)
    op.create_foreign_key("fk_demand_cells_layer", "demand_cells", "demand_layers", ["layer_id"], ["id"],
                          ondelete="CASCADE")
    op.drop_constraint("uq_demand_cells_area_key", "demand_cells", type_="unique")
    op.create_unique_constraint("uq_demand_cells_layer_key", "demand_cells", ["layer_id", "cell_key"])
    op.create_index("ix_demand_cells_layer_x", "demand_cells", ["layer_id", "x"])  # a part's cells by their box
    op.create_foreign_key("fk_coverage_runs_layer", "coverage_runs", "demand_layers", ["layer_id"], ["id"],
                          ondelete="CASCADE")
    op.create_index("ix_coverage_runs_layer_id", "coverage_runs", ["layer_id"])
    op.execute("""
        CREATE VIEW area_cells AS
        SELECT c.* FROM demand_cells c JOIN demand_layers l ON l.id = c.layer_id WHERE l.retired_at IS NULL""")

    op.rename_table("run_cells", "run_cells_copied")
    op.create_table(
        "run_cells",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.Column("covered", sa.Boolean(), nullable=False),
        sa.Column("nearest_station_id", sa.Integer(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("straight_distance_m", sa.Float(), nullable=True),
        sa.Column("covered_weight", sa.Float(), nullable=True),
        sa.Column("covered_hours", sa.LargeBinary(), nullable=True),
        sa.Column("hours_covered", sa.SmallInteger(), nullable=True),
        sa.Column("night_gap", sa.Boolean(), nullable=True),
        sa.Column("accessibility", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "cell_id", name="pk_run_cells"),
    )
    op.execute("""
        INSERT INTO run_cells (run_id, cell_id, covered, nearest_station_id, distance_m, straight_distance_m,
                               covered_weight, covered_hours, hours_covered, night_gap, accessibility)
        SELECT o.run_id, c.id, o.covered, o.nearest_station_id, o.distance_m, o.straight_distance_m,
               o.covered_weight, o.covered_hours, o.hours_covered, o.night_gap, o.accessibility
        FROM run_cells_copied o JOIN coverage_runs r ON r.id = o.run_id
        JOIN demand_cells c ON c.layer_id = r.layer_id AND c.cell_key = o.cell_key""")
    op.drop_table("run_cells_copied")
    # a run's cells go with the run: one statement per deleted set of runs instead of a key checked per stored row
    op.execute("""
        CREATE FUNCTION delete_run_cells() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM run_cells c USING gone g WHERE c.run_id = g.id;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER coverage_runs_delete_cells AFTER DELETE ON coverage_runs REFERENCING OLD TABLE AS gone "
               "FOR EACH STATEMENT EXECUTE FUNCTION delete_run_cells()")
    op.execute("""
        CREATE VIEW run_cells_in_layer AS
        SELECT r.*, c.cell_key, c.weight, c.geom, c.x, c.y FROM run_cells r JOIN demand_cells c ON c.id = r.cell_id""")


def downgrade() -> None:
    """Downgrade schema: runs get their own copies of their cells back; only current layers stay as cells."""
    op.execute("DROP VIEW run_cells_in_layer")
    op.execute("DROP TRIGGER coverage_runs_delete_cells ON coverage_runs")
    op.execute("DROP FUNCTION delete_run_cells()")
    op.rename_table("run_cells", "run_cells_numeric")
    op.execute("""
        CREATE TABLE run_cells AS
        SELECT n.run_id, c.cell_key, c.weight, n.covered, n.nearest_station_id, n.distance_m, n.straight_distance_m,
               c.geom, n.covered_weight, n.covered_hours, n.hours_covered, n.night_gap, n.accessibility
        FROM run_cells_numeric n JOIN demand_cells c ON c.id = n.cell_id""")
    op.execute("UPDATE run_cells r SET nearest_station_id = NULL WHERE nearest_station_id IS NOT NULL AND NOT "
               "EXISTS (SELECT 1 FROM stations s WHERE s.id = r.nearest_station_id)")
    op.create_primary_key("run_cells_pkey", "run_cells", ["run_id", "cell_key"])
    op.create_foreign_key(None, "run_cells", "coverage_runs", ["run_id"], ["id"], ondelete="CASCADE")
    op.create_foreign_key(None, "run_cells", "stations", ["nearest_station_id"], ["id"], ondelete="SET NULL")
    op.execute("CREATE INDEX ix_run_cells_geom ON run_cells USING gist (geom)")
    op.drop_table("run_cells_numeric")
    op.execute("DROP VIEW area_cells")
    op.drop_index("ix_coverage_runs_layer_id", "coverage_runs")
    op.drop_constraint("fk_coverage_runs_layer", "coverage_runs", type_="foreignkey")
    op.drop_column("coverage_runs", "layer_id")
    op.execute("DELETE FROM demand_cells c USING demand_layers l WHERE l.id = c.layer_id AND l.retired_at IS NOT "
               "NULL")
    op.drop_index("ix_demand_cells_layer_x", "demand_cells")
    op.drop_constraint("uq_demand_cells_layer_key", "demand_cells", type_="unique")
    op.create_unique_constraint("uq_demand_cells_area_key", "demand_cells", ["area_id", "cell_key"])
    op.drop_constraint("fk_demand_cells_layer", "demand_cells", type_="foreignkey")
    op.drop_column("demand_cells", "y")
    op.drop_column("demand_cells", "x")
    op.drop_column("demand_cells", "layer_id")
    op.drop_table("demand_layers")
