"""coverage by hour of the week and capacity: demand profiles, hourly run figures, station loads

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:30:00

- ``demand_profiles``: an area's demand profile over the 168 hours of the week (Monday 00:00 first, local time),
  summing to 1, from a planner's file; demand without times is spread by it (without one, the built-in profile).
- ``coverage_runs``, ``run_units``: a run by hour keeps its demand and covered demand per hour of the week (and the
  stations open per hour) as 168-number arrays.
- ``run_cells``: ``covered_weight`` (demand of the cell's points covered, when measured on points),
  ``covered_hours`` (21 bytes, bit h set when covered at hour h), ``hours_covered`` (0–168), ``night_gap`` and
  ``accessibility`` (two-step floating catchment, seats per unit of demand at the peak hour).
- ``run_station_loads``: per station of a run with capacity, its peak hour, the demand within reach then, that demand
  per seat and whether it is crowded (a copy: it survives the station's removal).
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HOURLY = "array_length({0}, 1) = 168"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "demand_profiles",
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("weights", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(_HOURLY.format("weights"), name="ck_demand_profiles_168"),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("area_id"),
    )
    for table in ("coverage_runs", "run_units"):
        op.add_column(table, sa.Column("demand_by_hour", postgresql.ARRAY(sa.Float()), nullable=True))
        op.add_column(table, sa.Column("covered_by_hour", postgresql.ARRAY(sa.Float()), nullable=True))
    op.add_column("coverage_runs", sa.Column("open_by_hour", postgresql.ARRAY(sa.Integer()), nullable=True))
    op.add_column("run_cells", sa.Column("covered_weight", sa.Float(), nullable=True))
    op.add_column("run_cells", sa.Column("covered_hours", sa.LargeBinary(), nullable=True))
    op.add_column("run_cells", sa.Column("hours_covered", sa.SmallInteger(), nullable=True))
    op.add_column("run_cells", sa.Column("night_gap", sa.Boolean(), nullable=True))
    op.add_column("run_cells", sa.Column("accessibility", sa.Float(), nullable=True))
    op.create_table(
        "run_station_loads",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("peak_hour", sa.SmallInteger(), nullable=True),
        sa.Column("peak_demand", sa.Float(), nullable=False),
        sa.Column("per_seat", sa.Float(), nullable=True),
        sa.Column("crowded", sa.Boolean(), nullable=False),
        sa.Column("geom", geoalchemy2.types.Geometry(geometry_type="POINT", srid=4326, spatial_index=False,
                                                     from_text="ST_GeomFromEWKT", name="geometry"), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["coverage_runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("run_id", "external_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("run_station_loads")
    for column in ("accessibility", "night_gap", "hours_covered", "covered_hours", "covered_weight"):
        op.drop_column("run_cells", column)
    op.drop_column("coverage_runs", "open_by_hour")
    for table in ("run_units", "coverage_runs"):
        op.drop_column(table, "covered_by_hour")
        op.drop_column(table, "demand_by_hour")
    op.drop_table("demand_profiles")
