"""monthly returns and the extract an area's streets were built from

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 08:10:00

A union files a return (月报) each month: ``monthly_returns`` keeps one per area and calendar month (``period``, the
first day of the month in the app's time zone) with who made it (union, preparer, reviewer), when, the coverage run
it used, and a snapshot of the registry (every station's fields), of the per-township covered shares and of the top
gaps, so next month's return lists what changed since. ``area_extracts`` remembers the OpenStreetMap extract the
area's street networks were last built from, so reports name the streets near gaps without being told the file.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "monthly_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("union_name", sa.String(length=200), nullable=False),
        sa.Column("preparer", sa.String(length=100), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("stations", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("units", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("gaps", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["coverage_runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("area_id", "period", name="uq_monthly_returns_area_period"),
    )
    op.create_index(op.f("ix_monthly_returns_area_id"), "monthly_returns", ["area_id"], unique=False)
    op.create_table(
        "area_extracts",
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("area_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("area_extracts")
    op.drop_index(op.f("ix_monthly_returns_area_id"), table_name="monthly_returns")
    op.drop_table("monthly_returns")
