"""station phone, host name and hours as written; area display name and registry language

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:10:00

A clerk's sheet says who hosts a station by name (承办单位 "中国石化五道口加油站"), gives a phone number (联系电话) and
writes the hours in Chinese (周一至周五 09:00-18:00). ``stations.host`` keeps the host type code, ``host_name`` the
name as written; ``opening_hours`` keeps the OSM rule, ``opening_hours_text`` the text as written when it was not
already that rule. ``areas.display_name`` is the name people use (海淀区五道口街道), ``areas.registry_lang`` the
language of the registry's last import (``zh`` or ``en``), which exports follow unless told otherwise.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("stations", sa.Column("host_name", sa.String(200), nullable=True))
    op.add_column("stations", sa.Column("phone", sa.String(40), nullable=True))
    op.add_column("stations", sa.Column("opening_hours_text", sa.String(300), nullable=True))
    op.add_column("areas", sa.Column("display_name", sa.String(200), nullable=True))
    op.add_column("areas", sa.Column("registry_lang", sa.String(2), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("areas", "registry_lang")
    op.drop_column("areas", "display_name")
    op.drop_column("stations", "opening_hours_text")
    op.drop_column("stations", "phone")
    op.drop_column("stations", "host_name")
