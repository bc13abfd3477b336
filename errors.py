"""Domain errors, and their HTTP answers in one place.

Services raise these; ``ERROR_STATUS`` gives each its HTTP status, and ``add_exception_handlers`` registers
everything an app answers for an error: domain errors, the database-down family (SQLAlchemy and psycopg errors of
a lost, refusing or overloaded database, all answered 503 as ``DatabaseUnavailable``), values PostgreSQL refuses
(422) and FastAPI's request validation errors (422, one readable ``detail`` line plus ``errors``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.responses import JSONResponse

DATABASE_DOWN = "the database is unavailable right now; try again shortly"
DATABASE_SLOW = "the database took too long to answer; try again"
DATABASE_BUSY = "the service is busy (no free database connection); try again"


class YizhanError(Exception):
    """Base of all domain errors; the message is meant for a person."""


class NotFound(YizhanError):
    """A named thing (station, area, run) does not exist."""


class InvalidInput(YizhanError):
    """A parameter or file is unusable; the message names the field and what was expected."""


class Unauthorized(YizhanError):
    """A staff-only operation without a valid key."""


class Conflict(YizhanError):
    """The operation collides with another one in progress (an import of the same area); retry when it ends."""


class ImportCancelled(YizhanError):
    """An import stopped before its end because its caller went away (the client disconnected, the server is
    stopping); its transaction was rolled back, nothing was stored. No HTTP status of its own (400): nobody is
    left to read the answer."""


class TooManyRequests(YizhanError):
    """A client asked more often than the rate limit allows; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(YizhanError):
    """A request body (an upload) over the size limit; the message names the limit."""


class DatabaseUnavailable(YizhanError):
    """The database cannot be reached right now (or is too slow or too busy to answer: ``DATABASE_SLOW``,
    ``DATABASE_BUSY``)."""

    def __init__(self, message: str = DATABASE_DOWN) -> None:
        super().__init__(message)


class SetupError(YizhanError):
    """Something outside yizhan is missing (a binary, a package); the message says what to install."""


@dataclass
class RowProblem:
    """One problem in one row of an imported file (row numbers count the header as row 1).

    ``expected`` says in English what would be accepted; ``expected_zh`` the same in Chinese, ``field_zh`` the
    field's Chinese name (类型) and ``closest`` the accepted word nearest the value (饮水机 → 饮水), where the
    importer knows them.
    """

    row: int
    field: str
    value: object
    expected: str
    expected_zh: str | None = None
    field_zh: str | None = None
    closest: str | None = None

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}={self.value!r}: {self.expected}"


FIELD_ZH = {"id": "编号", "name": "名称", "lon": "经度", "lat": "纬度", "lon/lat": "经纬度", "weight": "订单量",
            "timestamp": "时间", "geometry": "几何", "fields": "字段数", "host_type": "场所类型"}
"""Chinese names of the fields every importer shares, for a problem that gives no ``field_zh``."""
ROWS_SHOWN = 10
"""Row numbers named in a group's line; the rest are counted."""
GROUPS_SHOWN = 50
"""Groups a rejected import's message lists; the rest are counted (the API's ``groups`` holds them all)."""


@dataclass
class ProblemGroup:
    """The problems of one bad value: a field, the value, and every row that holds it (``rows`` ascending)."""

    field: str
    value: object
    rows: list[int]
    expected: str
    expected_zh: str | None = None
    field_zh: str | None = None
    closest: str | None = None

    def zh(self) -> str:
        """The group in Chinese: 类型 '大站点' (12 行: 3, 7, 9, …): 可用 大型/小型/流动 — 最接近: 大型."""
        name = self.field_zh or FIELD_ZH.get(self.field, self.field)
        where = f"第 {self.rows[0]} 行" if len(self.rows) == 1 else f"{len(self.rows)} 行: {self._rows()}"
        head = f"{name} {self.value!r} ({where})"
        if not self.expected_zh:
            return head
        return f"{head}: {self.expected_zh}" + (f" — 最接近: {self.closest}" if self.closest else "")

    def en(self) -> str:
        """The group in English: kind '大站点' (12 rows: 3, 7, 9, …): expected large/small/mobile — closest: 大型;
        a single row as ``RowProblem`` writes it (row 3, kind='大站点': ...)."""
        if len(self.rows) == 1:
            head = f"row {self.rows[0]}, {self.field}={self.value!r}"
        else:
            head = f"{self.field} {self.value!r} ({len(self.rows)} rows: {self._rows()})"
        return f"{head}: {self.expected}" + (f" — closest: {self.closest}" if self.closest else "")

    def _rows(self) -> str:
        shown = ", ".join(str(r) for r in self.rows[:ROWS_SHOWN])
        return shown + (", …" if len(self.rows) > ROWS_SHOWN else "")

    def __str__(self) -> str:
        return f"{self.zh()} / {self.en()}"

    def as_json(self) -> dict[str, Any]:
        """The group for the API: field, value (text), rows, expected (English and Chinese), closest."""
        return {"field": self.field, "field_zh": self.field_zh or FIELD_ZH.get(self.field, self.field),
                "value": str(self.value), "rows": self.rows, "count": len(self.rows), "expected": self.expected,
                "expected_zh": self.expected_zh, "closest": self.closest}


_BILINGUAL = re.compile(r"\s*/\s+(?=[A-Za-z'(])")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def split_languages(expected: str) -> tuple[str | None, str]:
    """An expectation written ``中文 / English`` in one text as its Chinese and English parts; (None, the text)
    for one in a single language."""
    for m in _BILINGUAL.finditer(expected):
        zh, en = expected[:m.start()], expected[m.end():]
        if _CJK.search(zh) and not _CJK.search(en[:1]):
            return zh, en
    return None, expected


def group_problems(problems: list[RowProblem]) -> list[ProblemGroup]:
    """``problems`` grouped by distinct bad value (same field, value and expectation), in the order of each
    group's first row. An expectation without ``expected_zh`` written ``中文 / English`` is split in two
    (``split_languages``)."""
    groups: dict[tuple[str, str, str, str], tuple[ProblemGroup, set[int]]] = {}
    for p in problems:
        key = (p.field, repr(p.value), p.expected, p.expected_zh or "")
        found = groups.get(key)
        if found is None:
            zh, en = (p.expected_zh, p.expected) if p.expected_zh else split_languages(p.expected)
            groups[key] = (ProblemGroup(p.field, p.value, [], en, zh, p.field_zh, p.closest), {p.row})
        else:
            found[1].add(p.row)
    out = []
    for g, rows in groups.values():
        g.rows = sorted(rows)
        out.append(g)
    return sorted(out, key=lambda g: g.rows[0])


@dataclass
class ImportRejected(InvalidInput):
    """A file had bad rows; nothing was stored. ``problems`` lists every one; the message lists them grouped by
    distinct bad value (``groups``), one line each in Chinese and English, at most ``GROUPS_SHOWN``."""

    source: str
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def groups(self) -> list[ProblemGroup]:
        """The problems grouped by distinct bad value (``group_problems``)."""
        return group_problems(self.problems)

    def __str__(self) -> str:
        groups = self.groups
        n, g = len(self.problems), len(groups)
        head = (f"{self.source}: {n} 处问题（{g} 个不同的错误值），未导入任何数据 / "
                f"{n} problem(s) with {g} distinct bad value(s), nothing was imported")
        shown = "\n".join(f"  - {x}" for x in groups[:GROUPS_SHOWN])
        rest = g - GROUPS_SHOWN
        more = f"\n  ... 另有 {rest} 组 / and {rest} more" if rest > 0 else ""
        return f"{head}\n{shown}{more}"


ERROR_STATUS: dict[type[YizhanError], int] = {
    ImportRejected: 422,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    DatabaseUnavailable: 503,
    SetupError: 503,
    Unauthorized: 401,
    TooManyRequests: 429,
    PayloadTooLarge: 413,
}
"""HTTP status of each domain error (the first class in this order that the error is an instance of); 400 for
any other ``YizhanError``."""

DATABASE_DOWN_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout,
                                                     psycopg.OperationalError)
"""Errors of a database that is down, restarting, refusing connections, too slow or out of pooled connections."""


def http_status(exc: YizhanError) -> int:
    """The HTTP status of a domain error (``ERROR_STATUS``)."""
    return next((code for cls, code in ERROR_STATUS.items() if isinstance(exc, cls)), 400)


def as_unavailable(exc: Exception) -> DatabaseUnavailable:
    """The ``DatabaseUnavailable`` an error of ``DATABASE_DOWN_ERRORS`` stands for: a statement timeout
    (``DATABASE_SLOW``), no free pooled connection (``DATABASE_BUSY``), otherwise ``DATABASE_DOWN``."""
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable(DATABASE_BUSY)
    if isinstance(exc, psycopg.errors.QueryCanceled) or (
            isinstance(exc, DBAPIError) and "statement timeout" in str(exc.orig)):
        return DatabaseUnavailable(DATABASE_SLOW)
    return DatabaseUnavailable()


def add_exception_handlers(app: FastAPI) -> None:
    """Register the app's error answers: ``{"detail": message}`` with the status of ``ERROR_STATUS``."""
    from fastapi.exceptions import RequestValidationError

    app.add_exception_handler(YizhanError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _sqlalchemy_error)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    app.add_exception_handler(psycopg.DataError, _refused_value)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse({"detail": detail, **extra}, status_code=status)


def domain_response(exc: YizhanError) -> JSONResponse:
    """The answer to a domain error: its status, its message; the bad rows of a rejected import in
    ``problems`` (every one) and ``groups`` (by distinct bad value: field, value, rows, expected, closest);
    ``Retry-After`` (seconds) when rate limited."""
    status = http_status(exc)
    if isinstance(exc, ImportRejected):
        return _problem(status, str(exc).split("\n")[0],
                        problems=[p.__dict__ | {"value": str(p.value)} for p in exc.problems],
                        groups=[g.as_json() for g in exc.groups])
    response = _problem(status, str(exc))
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _domain_error(_: Request, exc: YizhanError) -> JSONResponse:
    return domain_response(exc)


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    return domain_response(as_unavailable(exc))


def _refused(exc: Exception) -> JSONResponse:
    return _problem(422, f"a parameter holds a value the database cannot store: {str(exc).strip()}")


async def _refused_value(_: Request, exc: psycopg.DataError) -> JSONResponse:
    return _refused(exc)


async def _sqlalchemy_error(_: Request, exc: DBAPIError) -> JSONResponse:
    if isinstance(exc, DataError):  # a value PostgreSQL cannot take, e.g. a NUL character in text
        return _refused(exc.orig)  # type: ignore[arg-type]
    if isinstance(exc, DATABASE_DOWN_ERRORS) or exc.connection_invalidated:
        return domain_response(as_unavailable(exc))
    raise exc


async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for e in exc.errors():  # each begins with the parameter and where it was: "lon (query): ..."
        where, *name = (str(x) for x in e["loc"])
        loc = f"{'.'.join(name)} ({where})" if name else where
        parts.append(f"{loc}: {e['msg']}" + (f" (got {e['input']!r})" if "input" in e and e["input"] is not None
                                              else ""))
    return _problem(422, "; ".join(parts), errors=jsonable_errors(exc.errors()))


def jsonable_errors(errors: Any) -> Any:
    """Validation errors made JSON-safe (exceptions in ``ctx`` become strings)."""
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors, custom_encoder={Exception: str})
