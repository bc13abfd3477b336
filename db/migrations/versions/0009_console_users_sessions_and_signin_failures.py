"""console users, their sessions and failed sign-ins

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 11:20:00

The staff's and planners' console signs people in: ``users`` (a name unique without regard to case, a role of
admin, staff or planner, an argon2 hash of the password, when it was disabled), ``console_sessions`` (the SHA-256
of each session's random token, never the token, with its CSRF token, when it began and was last used) and
``signin_failures`` (each failed sign-in: the account name tried, lower-cased, the client address and when), which
the sign-in throttle counts per account and per address.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'staff', 'planner')", name="ck_users_role"),
        sa.CheckConstraint("password_hash LIKE '$argon2%'", name="ck_users_password_hash_argon2"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_users_lower_name", "users", [sa.text("lower(name)")], unique=True)
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"], unique=False)
    op.create_table(
        "signin_failures",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signin_failures_account_at", "signin_failures", ["account", "at"], unique=False)
    op.create_index("ix_signin_failures_address_at", "signin_failures", ["address", "at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_signin_failures_address_at", table_name="signin_failures")
    op.drop_index("ix_signin_failures_account_at", table_name="signin_failures")
    op.drop_table("signin_failures")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index("uq_users_lower_name", table_name="users")
    op.drop_table("users")
