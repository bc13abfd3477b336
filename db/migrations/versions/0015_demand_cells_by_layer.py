"""demand cells partitioned by layer

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 03:10:00

Writing an import's cells into the one shared ``demand_cells`` table cost four times what writing them into a table
of their own does: every row went to the write-ahead log and into four indexes one by one. So ``demand_cells``
becomes a table partitioned by list of ``layer_id``, one partition ``demand_cells_l{id}`` per demand layer
(``data.layers``). An import creates its layer's table in its own transaction (its rows then skip the write-ahead
log with ``wal_level=minimal``), loads it, and attaches it: the indexes are built once over the loaded rows.

- The columns, their order and the views on them (``area_cells``, ``run_cells_in_layer``) stay as they were; ``id``
  still comes from ``demand_cells_id_seq``, so cell ids stay unique across layers (runs refer to cells by id).
- The primary key becomes ``(id, layer_id)`` (a partitioned table's keys include its partition key); it still finds a
  cell by id. ``uq_demand_cells_layer_key``, ``ix_demand_cells_layer_x`` and ``ix_demand_cells_area_id`` stay.
- Deleting a layer drops its partition (the statement trigger of migration 0014, rewritten) instead of deleting its
  cells row by row.

The stored cells move over, each layer's to its partition; the downgrade puts them back in one table.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = """
    id integer NOT NULL DEFAULT nextval('demand_cells_id_seq'::regclass),
    area_id integer NOT NULL,
    cell_key character varying(60) NOT NULL,
    cell_size_m double precision NOT NULL,
    weight double precision NOT NULL,
    points integer NOT NULL,
    geom geometry(Polygon, 4326) NOT NULL,
    centroid geometry(Point, 4326) NOT NULL,
    layer_id integer NOT NULL,
    x double precision NOT NULL,
    y double precision NOT NULL"""
"""The columns of ``demand_cells`` in their order (the views select ``c.*`` in it)."""

VIEWS = """
    CREATE VIEW area_cells AS
    SELECT c.* FROM demand_cells c JOIN demand_layers l ON l.id = c.layer_id WHERE l.retired_at IS NULL;
    CREATE VIEW run_cells_in_layer AS
    SELECT r.*, c.cell_key, c.weight, c.geom, c.x, c.y FROM run_cells r JOIN demand_cells c ON c.id = r.cell_id"""

NAMES = ("id, area_id, cell_key, cell_size_m, weight, points, geom, centroid, layer_id, x, y")


def _swap_in(new_table: str) -> None:
    """Drop the views and the old ``demand_cells``, keeping its sequence; rename ``new_table`` in its place."""
    op.execute("DROP VIEW run_cells_in_layer")
    op.execute("DROP VIEW area_cells")
    op.execute("ALTER SEQUENCE demand_cells_id_seq OWNED BY NONE")
    op.execute("DROP TABLE demand_cells")
    op.execute(f"ALTER TABLE {new_table} RENAME TO demand_cells")
    op.execute("ALTER SEQUENCE demand_cells_id_seq OWNED BY demand_cells.id")


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(f"CREATE TABLE demand_cells_by_layer ({COLUMNS}) PARTITION BY LIST (layer_id)")
    op.execute("""
        DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT DISTINCT layer_id AS id FROM demand_cells LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF demand_cells_by_layer FOR VALUES IN (%s)',
                           'demand_cells_l' || r.id, r.id);
          END LOOP;
        END $$""")
    op.execute(f"INSERT INTO demand_cells_by_layer ({NAMES}) SELECT {NAMES} FROM demand_cells")
    _swap_in("demand_cells_by_layer")
    op.execute("ALTER TABLE demand_cells ADD CONSTRAINT demand_cells_pkey PRIMARY KEY (id, layer_id)")
    op.execute("ALTER TABLE demand_cells ADD CONSTRAINT uq_demand_cells_layer_key UNIQUE (layer_id, cell_key)")
    op.execute("CREATE INDEX ix_demand_cells_area_id ON demand_cells (area_id)")
    op.execute("CREATE INDEX ix_demand_cells_layer_x ON demand_cells (layer_id, x)")
    op.execute(VIEWS)
    op.execute("""
        CREATE OR REPLACE FUNCTION delete_layer_cells() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE g record;
        BEGIN
            FOR g IN SELECT id FROM gone LOOP
                EXECUTE format('DROP TABLE IF EXISTS %I', 'demand_cells_l' || g.id);
            END LOOP;
            RETURN NULL;
        END $$""")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("""
        CREATE OR REPLACE FUNCTION delete_layer_cells() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM demand_cells c USING gone g WHERE c.layer_id = g.id;
            RETURN NULL;
        END $$""")
    op.execute(f"CREATE TABLE demand_cells_one ({COLUMNS})")
    op.execute(f"INSERT INTO demand_cells_one ({NAMES}) SELECT {NAMES} FROM demand_cells ORDER BY id")
    _swap_in("demand_cells_one")
    op.execute("ALTER TABLE demand_cells ADD CONSTRAINT demand_cells_pkey PRIMARY KEY (id)")
    op.execute("ALTER TABLE demand_cells ADD CONSTRAINT uq_demand_cells_layer_key UNIQUE (layer_id, cell_key)")
    op.execute("CREATE INDEX ix_demand_cells_area_id ON demand_cells (area_id)")
    op.execute("CREATE INDEX ix_demand_cells_layer_x ON demand_cells (layer_id, x)")
    op.execute(VIEWS)
