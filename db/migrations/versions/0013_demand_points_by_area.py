"""demand points partitioned by area, stored as numbers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 16:10:00

- ``demand_points`` becomes a table partitioned by list of ``area_id``: one partition ``demand_points_a{id}`` per
  area with points (an import makes it, or swaps a freshly loaded table in for it: ``data.demand_points``).
- A point is numbers only: ``id`` (its number in its area, from 1 in the order of the file), ``lon``, ``lat`` (WGS 84
  degrees), ``x``, ``y`` (metres in the area's metric CRS, x east, y north), ``weight``, ``observed_at``. No geometry,
  no index, no primary key and no foreign key: readers take an area's points whole, an index on ten million points
  takes longer to build than the points take to load, and a foreign key is checked row by row (seven times the load
  time). The cell of a point is ``floor(x / size)``, ``floor(y / size)`` for its layer's cell size.

The stored points move over (``x``, ``y`` by PostGIS in their area's CRS, numbered in their former id order); the
downgrade gives them their geometry back.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.rename_table("demand_points", "demand_points_geom")
    op.execute("""
        CREATE TABLE demand_points (
            area_id integer NOT NULL,
            id integer NOT NULL,
            lon double precision NOT NULL,
            lat double precision NOT NULL,
            x double precision NOT NULL,
            y double precision NOT NULL,
            weight double precision NOT NULL,
            observed_at timestamp with time zone
        ) PARTITION BY LIST (area_id)""")
    areas = op.get_bind().exec_driver_sql("SELECT DISTINCT area_id FROM demand_points_geom ORDER BY 1").scalars()
    for area_id in list(areas):
        op.execute(f"CREATE TABLE demand_points_a{int(area_id)} PARTITION OF demand_points "
                   f"FOR VALUES IN ({int(area_id)})")
    op.execute("""
        INSERT INTO demand_points (area_id, id, lon, lat, x, y, weight, observed_at)
        SELECT p.area_id, row_number() OVER (PARTITION BY p.area_id ORDER BY p.id), ST_X(p.geom), ST_Y(p.geom),
               ST_X(ST_Transform(p.geom, a.crs_epsg)), ST_Y(ST_Transform(p.geom, a.crs_epsg)), p.weight,
               p.observed_at
        FROM demand_points_geom p JOIN areas a ON a.id = p.area_id ORDER BY p.area_id, p.id""")
    op.drop_table("demand_points_geom")


def downgrade() -> None:
    """Downgrade schema: one table of points with a geometry, a GiST index and a foreign key to the area."""
    op.rename_table("demand_points", "demand_points_parts")
    op.execute("""
        CREATE TABLE demand_points (
            id serial PRIMARY KEY,
            area_id integer NOT NULL REFERENCES areas (id) ON DELETE CASCADE,
            weight double precision NOT NULL DEFAULT 1,
            observed_at timestamp with time zone,
            geom geometry(POINT, 4326) NOT NULL
        )""")
    op.execute("""
        INSERT INTO demand_points (area_id, weight, observed_at, geom)
        SELECT area_id, weight, observed_at, ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM demand_points_parts
        ORDER BY area_id, id""")
    op.execute("CREATE INDEX ix_demand_points_area_id ON demand_points (area_id)")
    op.execute("CREATE INDEX ix_demand_points_geom ON demand_points USING gist (geom)")
    op.execute("DROP TABLE demand_points_parts")
