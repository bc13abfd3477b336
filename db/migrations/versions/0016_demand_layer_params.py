"""demand layer params

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 07:00:00

A demand layer records how its cells were made (``params``, JSON): an import of points into H3 hexagons records
``{"h3": true, "h3_res": 9}`` (``data.h3_cells``); a layer of squares or an imported grid records nothing (``{}``).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("ALTER TABLE demand_layers ADD COLUMN params jsonb NOT NULL DEFAULT '{}'::jsonb")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("ALTER TABLE demand_layers DROP COLUMN params")
