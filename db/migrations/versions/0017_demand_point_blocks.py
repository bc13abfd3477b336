"""demand points stored as blocks of column bytes

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 04:10:00

Ten million points as ten million rows took the server 5.3–7.9 s to store, most of an import that has to take a
million points a second, and about 10 s to read back. Every reader takes an area's points whole (or a box of them),
so they are now stored as blocks of up to 65,536 points, one row per block:

- ``demand_point_blocks``, partitioned by list of ``area_id``, one partition ``demand_point_blocks_a{id}`` per area
  (an import makes it, or swaps a freshly loaded table in for it: ``data.demand_points``);
- a block's row: ``area_id``, ``first_id`` (the number of its first point; its points are numbered on from it),
  ``n`` (its points), ``weight_sum``, its box ``west``, ``south``, ``east``, ``north`` (metres in the area's CRS),
  and one ``bytea`` per column holding the values' 8-byte big-endian forms, as PostgreSQL sends them
  (``float8send``): ``lon``, ``lat`` (WGS 84 degrees), ``x``, ``y`` (metres, east and north), ``weight``, and
  ``micros``, the orders' instants in microseconds since 2000-01-01 UTC (``timestamptz_send``; ``-infinity``,
  the smallest 64-bit number, for a point without a time; NULL when no point of the block has one);
- the byte columns are stored as they are (``STORAGE EXTERNAL``): numbers do not compress, and trying costs time;
- deleting an area drops its partition (the trigger of migration 0014, now naming the new table).

The stored points move over in their order, numbered from 1 per area; the downgrade gives them a row each again.
"""

from collections.abc import Sequence

import numpy as np
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK = 65_536
BYTE_COLUMNS = ("lon", "lat", "x", "y", "weight", "micros")


def _drop_trigger(prefix: str) -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION drop_area_points() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format('DROP TABLE IF EXISTS %I', '{prefix}' || OLD.id);
            RETURN NULL;
        END $$""")


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("""
        CREATE TABLE demand_point_blocks (
            area_id integer NOT NULL,
            first_id integer NOT NULL,
            n integer NOT NULL,
            weight_sum double precision NOT NULL,
            west double precision NOT NULL,
            south double precision NOT NULL,
            east double precision NOT NULL,
            north double precision NOT NULL,
            lon bytea NOT NULL,
            lat bytea NOT NULL,
            x bytea NOT NULL,
            y bytea NOT NULL,
            weight bytea NOT NULL,
            micros bytea
        ) PARTITION BY LIST (area_id)""")
    for column in BYTE_COLUMNS:
        op.execute(f"ALTER TABLE demand_point_blocks ALTER COLUMN {column} SET STORAGE EXTERNAL")
    areas = op.get_bind().exec_driver_sql("SELECT DISTINCT area_id FROM demand_points ORDER BY 1").scalars()
    for area_id in list(areas):
        table = f"demand_point_blocks_a{int(area_id)}"
        op.execute(f"CREATE TABLE {table} PARTITION OF demand_point_blocks FOR VALUES IN ({int(area_id)})")
        op.execute(f"""
            INSERT INTO {table}
            SELECT area_id, min(k), count(*), sum(weight), min(x), min(y), max(x), max(y),
                   string_agg(float8send(lon), ''::bytea ORDER BY k), string_agg(float8send(lat), ''::bytea ORDER BY k),
                   string_agg(float8send(x), ''::bytea ORDER BY k), string_agg(float8send(y), ''::bytea ORDER BY k),
                   string_agg(float8send(weight), ''::bytea ORDER BY k),
                   CASE WHEN bool_or(observed_at IS NOT NULL) THEN
                       string_agg(timestamptz_send(coalesce(observed_at, '-infinity')), ''::bytea ORDER BY k) END
            FROM (SELECT *, row_number() OVER (ORDER BY id)::integer AS k FROM demand_points_a{int(area_id)}) p
            GROUP BY area_id, (k - 1) / {BLOCK}
            ORDER BY 2""")
    op.execute("DROP TABLE demand_points")
    _drop_trigger("demand_point_blocks_a")


def downgrade() -> None:
    """Downgrade schema: a row per point again (the blocks' bytes decoded here)."""
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
    bind = op.get_bind()
    areas = list(bind.exec_driver_sql("SELECT DISTINCT area_id FROM demand_point_blocks ORDER BY 1").scalars())
    for area_id in areas:
        op.execute(f"CREATE TABLE demand_points_a{int(area_id)} PARTITION OF demand_points "
                   f"FOR VALUES IN ({int(area_id)})")
        rows = bind.exec_driver_sql(
            f"SELECT first_id, n, {', '.join(BYTE_COLUMNS)} FROM demand_point_blocks_a{int(area_id)} ORDER BY 1").all()
        for first_id, n, *data in rows:
            lon, lat, x, y, weight = (np.frombuffer(bytes(b), ">f8") for b in data[:5])
            micros = np.frombuffer(bytes(data[5]), ">i8") if data[5] is not None else np.full(n, np.iinfo(np.int64).min)
            seconds = [None if m == np.iinfo(np.int64).min else m / 1e6 for m in micros.tolist()]
            bind.exec_driver_sql(
                "INSERT INTO demand_points SELECT %(a)s, %(f)s + k - 1, lon, lat, x, y, w, "
                "timestamptz '2000-01-01 00:00:00+00' + make_interval(secs => t) "
                "FROM unnest(%(lon)s::float8[], %(lat)s::float8[], %(x)s::float8[], %(y)s::float8[], "
                "%(w)s::float8[], %(t)s::float8[]) WITH ORDINALITY AS u(lon, lat, x, y, w, t, k)",
                {"a": int(area_id), "f": int(first_id), "lon": lon.tolist(), "lat": lat.tolist(), "x": x.tolist(),
                 "y": y.tolist(), "w": weight.tolist(), "t": seconds})
    op.execute("DROP TABLE demand_point_blocks")
    _drop_trigger("demand_points_a")
