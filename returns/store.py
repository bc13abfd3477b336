"""Monthly returns made, stored and loaded: one per area and calendar month (``monthly_returns``).

Making a return reads the coverage run it uses (the area's latest unless told) and the registry as it is now,
stores a snapshot of both, and compares it with the previous stored return of the area (the latest of an earlier
month). Who files it (union, preparer, reviewer) is remembered from the area's last return.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Row, text
from sqlalchemy.exc import IntegrityError

from yizhan.areas import AreaInfo, get_area_by_id, resolve_area
from yizhan.coverage.runs import latest_run_id
from yizhan.errors import Conflict, InvalidInput, NotFound
from yizhan.reports.run_report import gaps_table, headline, load_report, units_report_table
from yizhan.returns.period import Period, parse_period, zone
from yizhan.returns.snapshot import ACTIVE, Changes, compare, registry_snapshot
from yizhan.settings import Settings

TOP_GAPS = 10
"""Gaps a return records and prints (the full list is in the run's gap report)."""
PENDING = ("拥挤与夜间关闭的驿站：待营业时间分析提供后列出 / crowded and night-closed stations: listed once the "
           "opening-hours analysis exists (not yet)")
"""What the return says in the place of the crowded and night-closed stations, which need an analysis of opening
hours and visits that does not exist yet: no figure is made up."""


@dataclass(frozen=True)
class Signers:
    """Who files a return; None: as on the area's last return."""

    union: str | None = None
    preparer: str | None = None
    reviewer: str | None = None


@dataclass
class ReturnRecord:
    """A stored return. ``figures`` are the run's headline figures (``covered_share`` 0–1, demand, ``run_id``,
    ``mode``, ``radius_m`` in metres, ...); ``stations`` the registry snapshot (``snapshot.registry_snapshot``);
    ``units`` the covered share per township (``name, stations, demand, demand_covered, covered_share``);
    ``gaps`` the top gaps (rank, demand, street, location, lon/lat WGS 84, nearest station and distance in m)."""

    id: int
    area: AreaInfo
    period: Period
    union_name: str
    preparer: str
    reviewer: str
    made_at: datetime
    run_id: int | None
    figures: dict[str, Any] = field(default_factory=dict)
    stations: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active_stations(self) -> int:
        """Active stations of the snapshot."""
        return sum(1 for s in self.stations if s["status"] == ACTIVE)


@dataclass
class MonthReturn:
    """A return with what it is compared to: the previous stored return (None for the area's first) and the
    changes of the registry since. ``timezone`` is the IANA zone its times are printed in."""

    record: ReturnRecord
    previous: ReturnRecord | None
    changes: Changes
    timezone: str

    @property
    def area(self) -> AreaInfo:
        """The return's area."""
        return self.record.area

    @property
    def period(self) -> Period:
        """The month of the return."""
        return self.record.period

    def basis_note(self) -> tuple[str, str] | None:
        """(Chinese, English) when this month's run measured coverage another way than the previous return's
        (straight line or along the streets, walk or bike, another radius): the change of the covered shares then
        includes that difference. None when they are alike or there is no previous return."""
        if self.previous is None:
            return None
        now, last = self.record.figures, self.previous.figures
        if all(now.get(k) == last.get(k) for k in BASIS):
            return None

        def said(f: dict[str, Any]) -> str:
            way = "along the streets" if f.get("mode") == "network" else "straight line"
            profile = f" ({f['profile']})" if f.get("mode") == "network" and f.get("profile") else ""
            return f"{way}{profile}, {float(f.get('radius_m') or 0):,.0f} m"

        return ("上月与本月的覆盖分析方法不同（距离算法或半径），覆盖率变化含方法差异",
                f"last month's run measured coverage another way ({said(last)}; now {said(now)}): the change "
                f"includes that difference")

    def notes(self) -> list[tuple[str, str]]:
        """(Chinese, English) warnings about the figures: measured another way than last month
        (``basis_note``), or by a run older than the registry's last change (run ``yizhan coverage`` again)."""
        out = [n for n in [self.basis_note()] if n is not None]
        if self.record.figures.get("registry_changed_after_run"):
            out.append(("登记册在该覆盖分析之后有变更，覆盖率未反映最新站点；请重新运行覆盖分析后再制作月报",
                        f"the registry changed after coverage run #{self.record.run_id}: its shares do not show "
                        f"the latest stations; run `yizhan coverage` again, then make the return again"))
        return out

    def townships(self) -> pd.DataFrame:
        """Covered share per township now and last month (NaN where the previous return had no such township, or
        there is none) and the change (now - last, as a share: 0.021 is 2.1 percentage points); this month's
        townships first in their order, then those only last month had."""
        now = {u["name"]: u for u in self.record.units}
        last = {u["name"]: u for u in self.previous.units} if self.previous else {}
        names = [*now, *(n for n in last if n not in now)]

        def get(d: dict[str, dict[str, Any]], n: str, k: str) -> float:
            v = d.get(n, {}).get(k)
            return float(v) if v is not None else np.nan

        out = pd.DataFrame({
            "name": names,
            "stations": [now[n]["stations"] if n in now else None for n in names],
            "demand": [get(now, n, "demand") for n in names],
            "demand_covered": [get(now, n, "demand_covered") for n in names],
            "share_now": [get(now, n, "covered_share") for n in names],
            "share_last": [get(last, n, "covered_share") for n in names],
        })
        out["change"] = out["share_now"] - out["share_last"]
        return out


_COLUMNS = ("id, area_id, period, union_name, preparer, reviewer, made_at, run_id, figures, stations, units, gaps")


def _record(conn: Connection, row: Row[Any], area: AreaInfo | None = None) -> ReturnRecord:
    return ReturnRecord(row.id, area or get_area_by_id(conn, row.area_id), Period.of(row.period), row.union_name,
                        row.preparer, row.reviewer, row.made_at, row.run_id, dict(row.figures), list(row.stations),
                        list(row.units), list(row.gaps))


def stored_return(conn: Connection, area: AreaInfo, period: Period) -> ReturnRecord | None:
    """The stored return of ``area`` for ``period``, or None."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM monthly_returns WHERE area_id = :a AND period = :p"),
                       {"a": area.id, "p": period.first_day}).one_or_none()
    return _record(conn, row, area) if row is not None else None


def previous_return(conn: Connection, area: AreaInfo, period: Period) -> ReturnRecord | None:
    """The area's latest stored return of a month before ``period``, or None."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM monthly_returns WHERE area_id = :a AND period < :p "
                            "ORDER BY period DESC LIMIT 1"), {"a": area.id, "p": period.first_day}).one_or_none()
    return _record(conn, row, area) if row is not None else None


def remembered_signers(conn: Connection, area: AreaInfo) -> Signers:
    """Union, preparer and reviewer of the area's last made return (all None before the first)."""
    row = conn.execute(text("SELECT union_name, preparer, reviewer FROM monthly_returns WHERE area_id = :a "
                            "ORDER BY made_at DESC, id DESC LIMIT 1"), {"a": area.id}).one_or_none()
    return Signers(*row) if row is not None else Signers()


def _signers(given: Signers, remembered: Signers) -> tuple[str, str, str]:
    values = {}
    missing = []
    for key, option in (("union", "--union"), ("preparer", "--preparer"), ("reviewer", "--reviewer")):
        v = getattr(given, key)
        v = v.strip() if isinstance(v, str) else None
        values[key] = v or getattr(remembered, key)
        if not values[key]:
            missing.append(option)
        elif len(values[key]) > (200 if key == "union" else 100):
            raise InvalidInput(f"{option} {values[key][:30]!r}…: 太长 too long (at most "
                               f"{200 if key == 'union' else 100} characters)")
    if missing:
        raise InvalidInput(f"首份月报须填写 {'、'.join(missing)}（之后沿用上次的）/ the area's first return needs "
                           f"{', '.join(missing)} (later returns reuse the last ones)")
    return values["union"], values["preparer"], values["reviewer"]


def _figures(report: Any) -> dict[str, Any]:
    h = headline(report)
    keep = ("run_id", "mode", "radius_m", "stations", "cells", "demand_total", "demand_covered", "covered_share",
            "gaps", "created_at", "profile", "covered_share_straight")
    out = {k: h.get(k) for k in keep if k in h}
    out = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in out.items()}
    out["streets_source"] = report.streets_source if report.streets is not None else None
    return out


def _json_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in rows]


def make_return(engine: Engine, month: str, *, settings: Settings, area: str | None = None,
                run_id: int | None = None, signers: Signers = Signers(), replace: bool = False,
                streets: Any = None, streets_source: str | None = None, now: datetime | None = None) -> MonthReturn:
    """Make and store the return of ``month`` (``YYYY-MM``, a calendar month in ``settings.timezone``, not after
    the current one) for ``area`` (the only one when not named), and compare it with the previous return.

    It uses run ``run_id`` or the area's latest coverage run: its per-township covered shares and its top gaps,
    with the names of nearby streets from ``streets`` (named lines, any CRS) or from the extract the area's street
    network was built from. The registry is read as it is now. ``signers`` left None are taken from the area's
    last return. A return already stored for the month is replaced only with ``replace``; otherwise Conflict.
    """
    now = now or datetime.now(UTC)
    period = parse_period(month, now=now, tz=settings.timezone)
    with engine.connect() as conn:
        info = resolve_area(conn, area)
        existing = stored_return(conn, info, period)
        if existing is not None and not replace:
            made = existing.made_at.astimezone(zone(settings.timezone))
            raise Conflict(f"{info.label} {period.label} 的月报已存在（{made:%Y-%m-%d} 制作）；重新制作请加 --replace "
                           f"/ the return of {period.label} exists; add --replace to make it again")
        union, preparer, reviewer = _signers(signers, remembered_signers(conn, info))
        if run_id is None:
            run_id = _alike_run(conn, info, previous_return(conn, info, period))
        run_area = conn.execute(text("SELECT area_id FROM coverage_runs WHERE id = :r"), {"r": run_id}).scalar()
        if run_area is None:
            raise NotFound(f"运行 --run {run_id}: 不存在 no such coverage run")
        if run_area != info.id:
            raise InvalidInput(f"运行 --run {run_id}: 属于另一个区域 belongs to another area, not {info.name}")
    report = load_report(engine, run_id, streets=streets, streets_source=streets_source,
                         timezone=settings.timezone, remembered_streets=True)
    gaps = gaps_table(report).head(TOP_GAPS)
    if "street" not in gaps:
        gaps = gaps.assign(street=None, street_distance_m=np.nan)
    units = units_report_table(report)[["name", "stations", "demand", "demand_covered", "covered_share"]]
    figures = _figures(report)
    try:
        with engine.begin() as conn:
            # a registry changed after the run: its shares are not those of the registry recorded beside them
            figures["registry_changed_after_run"] = bool(conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM stations s, coverage_runs r WHERE r.id = :r AND s.area_id = r.area_id "
                "AND s.updated_at > r.created_at)"), {"r": run_id}).scalar())
            stations = registry_snapshot(conn, info.id)
            conn.execute(text("DELETE FROM monthly_returns WHERE area_id = :a AND period = :p"),
                         {"a": info.id, "p": period.first_day})
            conn.execute(text(
                "INSERT INTO monthly_returns (area_id, period, union_name, preparer, reviewer, made_at, run_id, "
                "figures, stations, units, gaps) VALUES (:a, :p, :u, :pr, :rv, :m, :r, CAST(:f AS jsonb), "
                "CAST(:s AS jsonb), CAST(:un AS jsonb), CAST(:g AS jsonb))"),
                {"a": info.id, "p": period.first_day, "u": union, "pr": preparer, "rv": reviewer, "m": now,
                 "r": run_id, "f": _dumps(figures), "s": _dumps(stations), "un": _dumps(_json_rows(units)),
                 "g": _dumps(_json_rows(gaps[[c for c in GAP_KEYS if c in gaps]]))})
    except IntegrityError:
        raise Conflict(f"{info.label} {period.label} 的月报正由另一人制作 / the return of {period.label} is being made "
                       "by someone else at the same time; try again") from None
    return load_return(engine, period.label, area=info.name, settings=settings, now=now)


BASIS = ("mode", "profile", "radius_m")
"""What a run measures by: straight line or along the streets, the street network's profile, the radius (m)."""


def _alike_run(conn: Connection, area: AreaInfo, previous: ReturnRecord | None) -> int:
    """The run a return uses unless told: the area's latest run measured like the previous return's (``BASIS``),
    so that the change from last month is the registry's and the demand's, not a change of method; the latest run
    of any kind when there is none such (or no previous return)."""
    if previous is not None and previous.figures.get("mode"):
        f = previous.figures
        alike = conn.execute(text(
            "SELECT id FROM coverage_runs WHERE area_id = :a AND mode = :m AND radius_m = :r "
            "AND profile IS NOT DISTINCT FROM CAST(:p AS text) ORDER BY id DESC LIMIT 1"),
            {"a": area.id, "m": f["mode"], "r": float(f.get("radius_m") or 0),
             "p": f.get("profile") if f["mode"] == "network" else None}).scalar()
        if alike is not None:
            return int(alike)
    return latest_run_id(conn, area=area.name)


GAP_KEYS = ("rank", "demand", "area_km2", "cells", "lon", "lat", "street", "street_distance_m", "location",
            "nearest_station_id", "nearest_station", "nearest_distance_m", "straight_distance_m")
"""The fields of a gap a return records."""


def _dumps(value: Any) -> str:
    def default(v: Any) -> Any:
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, datetime):
            return v.isoformat()
        raise TypeError(f"not JSON: {type(v).__name__}")

    return json.dumps(value, ensure_ascii=False, default=default, allow_nan=False)


def load_return(engine: Engine, month: str, *, settings: Settings, area: str | None = None,
                now: datetime | None = None) -> MonthReturn:
    """The stored return of ``month`` (``YYYY-MM``) for ``area``, compared with the one before it."""
    period = parse_period(month, now=now or datetime.now(UTC), tz=settings.timezone)
    with engine.connect() as conn:
        info = resolve_area(conn, area)
        record = stored_return(conn, info, period)
        if record is None:
            raise NotFound(f"{info.label} 没有 {period.label} 的月报 / no return of {period.label}: make it with "
                           f"`yizhan report --area {info.name} --month {period.label}`")
        previous = previous_return(conn, info, period)
    changes = compare(previous.stations, record.stations) if previous is not None else Changes()
    return MonthReturn(record, previous, changes, settings.timezone)
