"""Passwords stored as argon2id hashes (argon2-cffi, its default parameters), never in any other form."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from yizhan.errors import InvalidInput

MIN_LENGTH = 10
"""Fewest characters of a password."""
MAX_LENGTH = 200
"""Most characters of a password (a longer one is refused rather than hashed)."""

_HASHER = PasswordHasher()
_UNUSED_HASH = _HASHER.hash("an unused password that no account has")
"""Checked against when the account named does not exist, so a wrong name costs as long as a wrong password."""


def check_password(password: str) -> str:
    """``password`` if it is acceptable (10 to 200 characters, not only spaces); InvalidInput saying why not."""
    if len(password) < MIN_LENGTH or not password.strip():
        raise InvalidInput(f"密码至少 {MIN_LENGTH} 个字符（现在 {len(password)} 个） / a password needs at least "
                           f"{MIN_LENGTH} characters (got {len(password)})")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"密码最多 {MAX_LENGTH} 个字符（现在 {len(password)} 个） / a password has at most "
                           f"{MAX_LENGTH} characters (got {len(password)})")
    return password


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (checked with :func:`check_password` first), in the PHC string form
    ``$argon2id$v=19$m=...,t=...,p=...$salt$hash``."""
    return _HASHER.hash(check_password(password))


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored_hash`` was made from; with no hash (no such account) a dummy hash
    is checked so the answer (False) takes as long."""
    try:
        return _HASHER.verify(stored_hash or _UNUSED_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with weaker parameters than the library's current ones."""
    return _HASHER.check_needs_rehash(stored_hash)
