"""registry change notifications

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 07:10:00

Every statement that changes ``stations`` or ``areas`` sends ``NOTIFY yizhan_registry`` (delivered when its
transaction commits, once per transaction): the API's in-process nearest-station index reloads on it.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("stations", "areas")


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("CREATE FUNCTION yizhan_registry_changed() RETURNS trigger LANGUAGE plpgsql AS "
               "$$ BEGIN PERFORM pg_notify('yizhan_registry', ''); RETURN NULL; END $$")
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION yizhan_registry_changed()")


def downgrade() -> None:
    """Downgrade schema."""
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS yizhan_registry_changed()")
