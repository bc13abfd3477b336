"""Who may sign in to the console: a name, a role and an argon2 hash of the password; disabled users keep their
row (and their name) but cannot sign in, and their sessions end."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from yizhan.accounts.passwords import hash_password
from yizhan.errors import InvalidInput, NotFound

ROLES: dict[str, tuple[str, str]] = {
    "admin": ("管理员", "administrator"),
    "staff": ("工会工作人员", "union staff"),
    "planner": ("规划人员", "planner"),
}
"""Roles: code, Chinese and English label. admin manages users; staff keep the registry; planners read and plan."""

NAME_MAX = 50
"""Most characters of a user's name."""
NAME_PATTERN = re.compile(r"[^\W_][\w.\-]*")
"""A user's name: letters (Chinese too) or digits, then letters, digits, ``.``, ``_`` or ``-``; no spaces."""


@dataclass(frozen=True)
class User:
    """A console user as stored (never the password hash)."""

    id: int
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the user may sign in."""
        return self.disabled_at is None


def check_name(name: str) -> str:
    """``name`` stripped if it can name a user; InvalidInput naming the value and what is accepted otherwise."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(f"用户名 {name!r} 不可用：须为 1–{NAME_MAX} 个字母（可为汉字）、数字或 . _ -，"
                           f"以字母或数字开头，不含空格 / user name {name!r}: expected 1 to {NAME_MAX} letters "
                           "(Chinese too), digits, '.', '_' or '-', starting with a letter or digit, no spaces")
    return name


def check_role(role: str) -> str:
    """``role`` if it is a role; InvalidInput listing the roles otherwise."""
    if role not in ROLES:
        raise InvalidInput(f"角色 {role!r} 不存在，可选 {' / '.join(ROLES)} / role {role!r}: expected one of "
                           f"{', '.join(ROLES)}")
    return role


def create_user(conn: Connection, name: str, role: str, password: str) -> User:
    """Create an active user; InvalidInput for a bad name, role or password, or a name taken (names are compared
    without regard to case)."""
    name, role = check_name(name), check_role(role)
    digest = hash_password(password)
    if conn.execute(text("SELECT 1 FROM users WHERE lower(name) = lower(:n)"), {"n": name}).first():
        raise InvalidInput(f"用户名 {name!r} 已被使用 / user name {name!r} is taken; choose another name")
    row = conn.execute(text("INSERT INTO users (name, role, password_hash) VALUES (:n, :r, :h) "
                            "RETURNING id, name, role, created_at, disabled_at"),
                       {"n": name, "r": role, "h": digest}).one()
    return User(**row._mapping)


def get_user(conn: Connection, name: str) -> User:
    """The user called ``name`` (any case); NotFound otherwise."""
    row = conn.execute(text("SELECT id, name, role, created_at, disabled_at FROM users WHERE lower(name) = lower(:n)"),
                       {"n": name.strip()}).first()
    if row is None:
        raise NotFound(f"没有用户 {name!r} / no user called {name!r} (`yizhan users list` lists them)")
    return User(**row._mapping)


def list_users(conn: Connection) -> list[User]:
    """Every user, active and disabled, by name."""
    rows = conn.execute(text("SELECT id, name, role, created_at, disabled_at FROM users ORDER BY lower(name)")).all()
    return [User(**r._mapping) for r in rows]


def count_active_admins(conn: Connection) -> int:
    """How many active admins there are."""
    return int(conn.execute(text("SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL")).scalar()
               or 0)


def set_disabled(conn: Connection, name: str, disabled: bool) -> User:
    """Disable (every session of the user ends at once) or enable the user called ``name``. The last active admin
    cannot be disabled (nobody could manage users any more)."""
    user = get_user(conn, name)
    if disabled and user.role == "admin" and user.active and count_active_admins(conn) <= 1:
        raise InvalidInput(f"不能停用最后一个管理员 {user.name!r} / {user.name!r} is the last active admin; "
                           "make another admin first")
    row = conn.execute(text("UPDATE users SET disabled_at = CASE WHEN :d THEN coalesce(disabled_at, now()) END "
                            "WHERE id = :i RETURNING id, name, role, created_at, disabled_at"),
                       {"d": disabled, "i": user.id}).one()
    if disabled:
        end_user_sessions(conn, user.id)
    return User(**row._mapping)


def set_password(conn: Connection, name: str, password: str) -> User:
    """Give the user called ``name`` a new password; every session of the user ends."""
    user = get_user(conn, name)
    conn.execute(text("UPDATE users SET password_hash = :h, password_changed_at = now() WHERE id = :i"),
                 {"h": hash_password(password), "i": user.id})
    end_user_sessions(conn, user.id)
    return user


def end_user_sessions(conn: Connection, user_id: int) -> int:
    """End every session of user ``user_id``; how many there were."""
    return conn.execute(text("DELETE FROM console_sessions WHERE user_id = :i"), {"i": user_id}).rowcount
