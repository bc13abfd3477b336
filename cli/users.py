"""``yizhan users create|list|disable|enable|password``: the console's accounts (admin, staff, planner).

A password is asked at a prompt (typed twice, not shown) or, for scripts, read from the first line of standard
input with ``--password-stdin``; it is never an argument, which other users of the machine could see.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from yizhan.cli import common
from yizhan.cli.common import app, engine
from yizhan.errors import InvalidInput

users_app = typer.Typer(help="Console accounts: admin, staff, planner (passwords stored as argon2 hashes).",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")

PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input (for scripts)")]


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input (its line end removed), or typed twice at a prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput("--password-stdin: 标准输入为空 / standard input is empty; send the password as "
                               "its first line")
        return line.rstrip("\r\n")
    password: str = typer.prompt("密码 Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[str, typer.Option("--role", help="admin, staff or planner")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create the console user NAME with a role; the password is asked (or read with --password-stdin)."""
    from yizhan.accounts.passwords import check_password
    from yizhan.accounts.users import check_name, check_role, create_user

    check_name(name)
    check_role(role)
    password = check_password(read_password(password_stdin))
    with engine().begin() as conn:
        user = create_user(conn, name, role, password)
    common.out.print(f"user {user.name} ({user.role}) created; sign in at /console/signin")


@users_app.command("list")
def users_list() -> None:
    """The console users: name, role, created, disabled (never a password)."""
    from yizhan.accounts.users import list_users

    with engine().connect() as conn:
        users = list_users(conn)
    table = Table("name", "role", "created", "disabled")
    for u in users:
        table.add_row(u.name, u.role, f"{u.created_at:%Y-%m-%d %H:%M}",
                      f"{u.disabled_at:%Y-%m-%d %H:%M}" if u.disabled_at else "")
    common.out.print(table)


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Disable the user NAME: it cannot sign in, and its sessions end now."""
    from yizhan.accounts.users import set_disabled

    with engine().begin() as conn:
        user = set_disabled(conn, name, True)
    common.out.print(f"user {user.name} disabled; its sessions have ended")


@users_app.command("enable")
def users_enable(name: str) -> None:
    """Enable the user NAME again."""
    from yizhan.accounts.users import set_disabled

    with engine().begin() as conn:
        user = set_disabled(conn, name, False)
    common.out.print(f"user {user.name} enabled")


@users_app.command("password")
def users_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password for the user NAME (asked, or read with --password-stdin); its sessions end."""
    from yizhan.accounts.passwords import check_password
    from yizhan.accounts.users import get_user, set_password

    with engine().connect() as conn:
        get_user(conn, name)  # an unknown name is said before a password is asked
    password = check_password(read_password(password_stdin))
    with engine().begin() as conn:
        user = set_password(conn, name, password)
    common.out.print(f"password of {user.name} changed; its sessions have ended")
