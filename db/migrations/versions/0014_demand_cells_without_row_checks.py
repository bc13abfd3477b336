"""demand cells written without per-row checks; an area's points go with the area

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 17:20:00

Writing an import's cells cost more than its points: each cell row was checked against two foreign keys (its area,
its layer) and entered into two GiST indexes (its polygon, its centre) that no query uses (a run reads a layer's
cells by layer, a part of a partitioned run by its box on ``x``; a unit's cells are found through the units' own
index). So:

- the GiST indexes ``ix_demand_cells_geom`` and ``ix_demand_cells_centroid`` go;
- ``demand_cells.area_id`` keeps its value and its b-tree index, without the foreign key (an area's layers go with
  it, and its cells with them);
- the cells of a deleted layer are deleted by one statement trigger on ``demand_layers`` instead of a foreign key
  checked per stored cell;
- deleting an area drops its partition of ``demand_points`` (a partition has no foreign key to the area).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("DROP INDEX IF EXISTS ix_demand_cells_geom")
    op.execute("DROP INDEX IF EXISTS ix_demand_cells_centroid")
    op.execute("ALTER TABLE demand_cells DROP CONSTRAINT IF EXISTS demand_cells_area_id_fkey")
    op.execute("ALTER TABLE demand_cells DROP CONSTRAINT fk_demand_cells_layer")
    op.execute("""
        CREATE FUNCTION delete_layer_cells() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM demand_cells c USING gone g WHERE c.layer_id = g.id;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER demand_layers_delete_cells AFTER DELETE ON demand_layers REFERENCING OLD TABLE AS gone "
               "FOR EACH STATEMENT EXECUTE FUNCTION delete_layer_cells()")
    op.execute("""
        CREATE FUNCTION drop_area_points() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format('DROP TABLE IF EXISTS %I', 'demand_points_a' || OLD.id);
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER areas_drop_points AFTER DELETE ON areas FOR EACH ROW "
               "EXECUTE FUNCTION drop_area_points()")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER areas_drop_points ON areas")
    op.execute("DROP FUNCTION drop_area_points()")
    op.execute("DROP TRIGGER demand_layers_delete_cells ON demand_layers")
    op.execute("DROP FUNCTION delete_layer_cells()")
    op.execute("DELETE FROM demand_cells c WHERE NOT EXISTS (SELECT 1 FROM demand_layers l WHERE l.id = c.layer_id)")
    op.execute("ALTER TABLE demand_cells ADD CONSTRAINT fk_demand_cells_layer FOREIGN KEY (layer_id) "
               "REFERENCES demand_layers (id) ON DELETE CASCADE")
    op.execute("ALTER TABLE demand_cells ADD CONSTRAINT demand_cells_area_id_fkey FOREIGN KEY (area_id) "
               "REFERENCES areas (id) ON DELETE CASCADE")
    op.execute("CREATE INDEX ix_demand_cells_centroid ON demand_cells USING gist (centroid)")
    op.execute("CREATE INDEX ix_demand_cells_geom ON demand_cells USING gist (geom)")
