"""Domain errors. Services raise these; the API maps them to HTTP codes in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


class YizhanError(Exception):
    """Base of all domain errors; the message is meant for a person."""


class NotFound(YizhanError):
    """A named thing (station, area, run) does not exist."""


class InvalidInput(YizhanError):
    """A parameter or file is unusable; the message names the field and what was expected."""


class Unauthorized(YizhanError):
    """A staff-only operation without a valid key."""


class TooManyRequests(YizhanError):
    """A client asked more often than the rate limit allows; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(YizhanError):
    """The database cannot be reached right now."""


class SetupError(YizhanError):
    """Something outside yizhan is missing (a binary, a package); the message says what to install."""


@dataclass
class RowProblem:
    """One problem in one row of an imported file (row numbers count the header as row 1)."""

    row: int
    field: str
    value: object
    expected: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}={self.value!r}: {self.expected}"


@dataclass
class ImportRejected(InvalidInput):
    """A file had bad rows; nothing was stored. ``problems`` lists every one."""

    source: str
    problems: list[RowProblem] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"{self.source}: {len(self.problems)} problem(s), nothing was imported"
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        return f"{head}\n{shown}{more}"
