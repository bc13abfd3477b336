"""finite station coordinates

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:40:00

A station's or a candidate site's point must be a real place: not empty, longitude within -180..180 and latitude
within -90..90 degrees. NaN and infinities fail ``BETWEEN`` (PostgreSQL orders NaN above every number), so a
non-finite coordinate can no longer be stored, whichever program writes it.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINITE_POINT = ("NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90")
CONSTRAINTS = {"stations": "ck_stations_finite_point", "candidate_sites": "ck_candidate_sites_finite_point"}


def upgrade() -> None:
    """Upgrade schema. Stops, naming them, when stored rows break the rule (fix or delete those first)."""
    conn = op.get_bind()
    for table, name in CONSTRAINTS.items():
        bad = conn.execute(text(f"SELECT area_id, external_id FROM {table} WHERE NOT ({FINITE_POINT}) "
                                "ORDER BY area_id, external_id LIMIT 20")).all()
        if bad:
            shown = ", ".join(f"area {a} id {e!r}" for a, e in bad)
            raise RuntimeError(f"{table} holds points that are not finite coordinates ({shown}); re-import these "
                               f"rows with valid lon/lat or delete them, then upgrade again")
        op.create_check_constraint(name, table, FINITE_POINT)


def downgrade() -> None:
    """Downgrade schema."""
    for table, name in CONSTRAINTS.items():
        op.drop_constraint(name, table, type_="check")
