"""What a return records of the registry, and what changed between two returns.

A snapshot is one plain dict per station (JSON, as stored in ``monthly_returns.stations``): the union's id, every
field of the registry, and the location as WGS 84 ``lon``, ``lat`` (degrees as stored; compared to 6 decimals,
about 0.1 m). Two snapshots compare into the stations opened (a new id that is active, or closed → active), closed
(active → closed, or gone from the registry) and changed (which fields, old → new, as the return prints them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from yizhan.geo.coords import GEOD
from yizhan.reports.run_report import hours_label
from yizhan.stations import vocab

ACTIVE = "active"
FIELD_LABELS: dict[str, str] = {
    "name": "名称 name",
    "kind": "类型 kind",
    "status": "状态 status",
    "host": "承办类型 host type",
    "host_name": "承办单位 host",
    "phone": "联系电话 phone",
    "address": "地址 address",
    "township": "街道 township",
    "amenities": "服务设施 amenities",
    "hours": "开放时间 hours",
    "seats": "座位数 seats",
    "stars": "星级 stars",
    "location": "位置 location",
    "registry": "登记 registry",
}
"""The fields a change can name, with the label the return prints (Chinese first, English beside)."""
COMPARED = ("name", "kind", "host", "host_name", "phone", "address", "township", "amenities", "hours", "seats",
            "stars", "location")
"""Fields compared between two snapshots (the status makes a station opened or closed instead)."""
KIND_LABELS = {"opened": "开通 opened", "closed": "关闭 closed", "changed": "变更 changed"}

_SNAPSHOT_SQL = text("""
    SELECT external_id AS id, name, kind, status, host, host_name, phone, address, township, amenities,
           opening_hours, opening_hours_text, seats, stars,
           ST_X(geom) AS lon, ST_Y(geom) AS lat
    FROM stations WHERE area_id = :a ORDER BY external_id""")


def registry_snapshot(conn: Connection, area_id: int) -> list[dict[str, Any]]:
    """Every station of the area as it is now, by id: a JSON-ready dict per station."""
    out = []
    for r in conn.execute(_SNAPSHOT_SQL, {"a": area_id}).mappings():
        d = dict(r)
        d["amenities"] = list(d["amenities"] or [])
        out.append(d)
    return out


def hours_of(station: dict[str, Any]) -> str | None:
    """The hours as the return prints them: as written where the registry kept that, else the OSM rule said in
    Chinese (``reports.run_report.hours_label``)."""
    return hours_label(station.get("opening_hours"), station.get("opening_hours_text"))


def shown(key: str, station: dict[str, Any] | None) -> str:
    """The value of field ``key`` of a snapshot station as the return prints it (Chinese labels for codes;
    "lon, lat" for the location; "—" when empty)."""
    if station is None:
        return "—"
    if key == "location":
        return f"{station['lon']:.6f}, {station['lat']:.6f}"
    if key == "hours":
        return hours_of(station) or "—"
    value = station.get(key)
    if value is None or value == "" or value == []:
        return "—"
    if key == "amenities":  # in the vocabulary's order, so two snapshots differ only when the set does
        order = {code: i for i, code in enumerate(vocab.AMENITIES)}
        return "、".join(vocab.label("amenity", a) for a in sorted(value, key=lambda a: (order.get(a, len(order)), a)))
    if key in ("kind", "host", "status"):
        return vocab.label("host" if key == "host" else key, str(value))
    return str(value)


@dataclass(frozen=True)
class FieldChange:
    """One field of a station, before and after (as printed)."""

    field: str
    old: str
    new: str

    @property
    def label(self) -> str:
        """The field's printed name."""
        return FIELD_LABELS[self.field]


@dataclass(frozen=True)
class StationChange:
    """A station opened, closed or changed since the previous return; ``fields`` its other changed fields."""

    kind: str  # opened | closed | changed
    id: str
    name: str
    fields: tuple[FieldChange, ...] = ()
    notes: tuple[tuple[str, str], ...] = ()  # (Chinese, English) pairs

    @property
    def note(self) -> str:
        """The notes, Chinese with English beside ("移动 312 米 moved 312 m")."""
        return "；".join(f"{zh} {en}" for zh, en in self.notes)

    @property
    def note_zh(self) -> str:
        """The notes in Chinese only."""
        return "；".join(zh for zh, _ in self.notes)


@dataclass
class Changes:
    """The differences between two snapshots, each list by station id."""

    opened: list[StationChange] = field(default_factory=list)
    closed: list[StationChange] = field(default_factory=list)
    changed: list[StationChange] = field(default_factory=list)

    @property
    def all(self) -> list[StationChange]:
        """Opened, then closed, then changed."""
        return [*self.opened, *self.closed, *self.changed]

    def __len__(self) -> int:
        return len(self.opened) + len(self.closed) + len(self.changed)


def moved_m(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Geodesic distance in metres (WGS 84 ellipsoid) between two snapshot stations' locations."""
    return float(GEOD.inv(a["lon"], a["lat"], b["lon"], b["lat"])[2])


def field_changes(a: dict[str, Any], b: dict[str, Any]) -> tuple[FieldChange, ...]:
    """The compared fields (``COMPARED``) whose printed value differs between ``a`` and ``b``."""
    return tuple(FieldChange(k, shown(k, a), shown(k, b)) for k in COMPARED if shown(k, a) != shown(k, b))


def _notes(fields: Iterable[FieldChange], a: dict[str, Any], b: dict[str, Any],
           *first: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    out = list(first)
    if any(f.field == "location" for f in fields):
        d = moved_m(a, b)
        out.append((f"移动 {d:,.0f} 米", f"moved {d:,.0f} m"))
    return tuple(out)


def compare(previous: Sequence[dict[str, Any]], current: Sequence[dict[str, Any]]) -> Changes:
    """What changed from the ``previous`` snapshot to the ``current`` one.

    Opened: a new id that is active, or a closed station now active. Closed: an active station now closed, or one
    gone from the registry. Changed: any other station with a compared field (``COMPARED``) that differs, a new
    id registered as closed, and a closed station gone from the registry. An opened or closed station lists its
    other changed fields too.
    """
    before = {s["id"]: s for s in previous}
    after = {s["id"]: s for s in current}
    out = Changes()
    for sid in sorted(before.keys() | after.keys()):
        a, b = before.get(sid), after.get(sid)
        if a is None and b is not None:
            if b["status"] == ACTIVE:
                out.opened.append(StationChange("opened", sid, b["name"], (), (("新登记", "new in the registry"),)))
            else:
                out.changed.append(StationChange("changed", sid, b["name"],
                                                 (FieldChange("registry", "—", "新登记（关闭）"),),
                                                 (("新登记但关闭", "registered as closed"),)))
        elif b is None and a is not None:
            if a["status"] == ACTIVE:
                out.closed.append(StationChange("closed", sid, a["name"], (),
                                                (("已从登记册删除", "removed from the registry"),)))
            else:
                out.changed.append(StationChange("changed", sid, a["name"],
                                                 (FieldChange("registry", "在册（关闭）", "删除"),),
                                                 (("已从登记册删除", "removed from the registry"),)))
        elif a is not None and b is not None:
            fields = field_changes(a, b)
            if a["status"] != ACTIVE and b["status"] == ACTIVE:
                out.opened.append(StationChange("opened", sid, b["name"], fields,
                                                _notes(fields, a, b, ("重新开放（关闭 → 运营）", "reopened"))))
            elif a["status"] == ACTIVE and b["status"] != ACTIVE:
                out.closed.append(StationChange("closed", sid, b["name"], fields,
                                                _notes(fields, a, b, ("运营 → 关闭", "active → closed"))))
            elif fields:
                out.changed.append(StationChange("changed", sid, b["name"], fields, _notes(fields, a, b)))
    return out
