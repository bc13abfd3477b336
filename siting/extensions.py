"""Longer hours versus new sites: the actions "extend station X to 22:00", "open station X round the clock" and
"open a new station at site Y" on one coverage matrix of (demand location, hour of the week) elements.

Hours are hours of the week, ``h = weekday * 24 + hour`` (Monday 0, 0–167, the area's local wall-clock time), as
in ``yizhan.weekly``. An **element** is a demand location at an hour when it has demand there and no open station
within the radius; its weight is that demand (orders), so the weight of all elements is the **uncovered
demand-hours**: orders placed at an hour when no station within reach was open. An action covers an element when it
reaches the location (within the radius, straight or along the streets: the ``Pairs`` the caller measured) and
is open at the element's hour because of the action:

- **extend to hh:mm** (kind ``extend``): on each day a station opens, it stays open from its opening that day to
  hh:mm. Its opening that day is the first hour of the day at which a period of its hours begins (the hour before
  it closed); the closed hours from there to hh:mm are added, breaks between periods included (08:30–12:00,
  14:30–18:00 extended to 22:00 is open 08:30–22:00). A day on which no period begins gains nothing: a day it
  never opens, or one it is open only by a period carried over from the evening before (18:00–02:00). Hours follow
  the weekly masks' rule (an hour counts when open at least 30 minutes of it): to 22:00 adds up to the hour
  21:00–22:00, to 22:30 also the hour from 22:00. An extension that adds no hour is not an action.
- **round the clock** (kind ``24h``): every closed hour of the week opens.
- **new site** (kind ``site``): a candidate site covers the locations it reaches at the hours of a stated rule
  (``site_open``; the caller's default is round the clock).

A station whose hours are unknown counts as open (``weekly.availability``'s default), so it gains nothing. The
actions go to ``solver.solve_mclp_kinds`` with a cap per kind; elements covered by the same set of actions are
merged there (weights summed). Demand in orders as stored, hours as counts of hours of the week.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from yizhan.arrays import concat_ranges
from yizhan.errors import InvalidInput
from yizhan.siting.solver import CoverageMatrix
from yizhan.weekly.masks import covered_masks, pack
from yizhan.weekly.week import HOURS

KINDS = ("extend", "24h", "site")
"""The kinds of action, in the order of their caps: extend a station's hours, open it round the clock, open a new
station at a candidate site."""
KIND_ZH = {"extend": "延长营业", "24h": "24小时营业", "site": "新建驿站"}
KIND_EN = {"extend": "extend hours", "24h": "open round the clock", "site": "open a new station"}
ELEMENTS_PER_CHUNK = 2_000_000
"""(element, action) links gathered at once while building the matrix (about 50 MB of index arrays)."""
_DAYS_OSM = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_TIME = re.compile(r"^\s*(\d{1,2})(?:\s*[:：]\s*(\d{2}))?\s*(?:点|时)?\s*$")
EXTEND_EXAMPLE = "22:00"


def until_hour(text: str) -> int:
    """The hour of the day (1–24) up to which an extension to ``text`` (``22:00``, ``22``, ``22:30``, ``22点``, local
    time) keeps a station open, end excluded: the hour from hh:00 counts when open at least 30 minutes of it, so
    ``22:00`` gives 22 (open through the hour 21:00–22:00) and ``22:30`` gives 23. InvalidInput, Chinese then
    English, for anything else than a time from 00:30 to 24:00."""
    m = _TIME.match(str(text))
    hh = int(m[1]) if m else -1
    mm = int(m[2]) if m and m[2] else 0
    if m is None or not (0 <= hh <= 24 and 0 <= mm < 60) or (hh == 24 and mm):
        raise InvalidInput(f"延长至 '{text}' 不是时刻，可写作 '{EXTEND_EXAMPLE}' / extend to '{text}': expected a "
                           f"local time hh:mm from 00:30 to 24:00, e.g. '{EXTEND_EXAMPLE}'")
    end = hh + (1 if mm >= 30 else 0)
    if end < 1:
        raise InvalidInput(f"延长至 '{text}' 太早，须不早于 00:30 / extend to '{text}': too early to add any hour; "
                           "expected 00:30 to 24:00")
    return end


def period_starts(open_: np.ndarray) -> np.ndarray:
    """(m, 168) bool: hours at which a period of opening begins (open at h, closed at the hour before; the week
    wraps, so Monday 00:00 follows Sunday 23:00). A station open all week has none."""
    o = np.asarray(open_, dtype=bool)
    starts: np.ndarray = o & ~np.roll(o, 1, axis=1)
    return starts


def extension_hours(open_: np.ndarray, end_hour: int) -> np.ndarray:
    """(m, 168) bool: the hours an extension to ``end_hour`` o'clock (1–24, excluded; see ``until_hour``) adds to
    stations open at ``open_`` (m, 168): on each day, the closed hours from the first period beginning that day to
    ``end_hour``; nothing on a day where no period begins (see the module's docstring)."""
    o = np.asarray(open_, dtype=bool)
    starts = period_starts(o).reshape(len(o), 7, 24)
    begins = starts.any(axis=2)
    first = np.where(begins, starts.argmax(axis=2), 24)  # (m, 7) first start of each day, 24 when none
    hour = np.arange(24)
    span = (hour[None, None, :] >= first[:, :, None]) & (hour[None, None, :] < end_hour)
    added: np.ndarray = span.reshape(len(o), HOURS) & ~o
    return added


def mask_rule(mask: np.ndarray) -> str:
    """A (168,) hour mask written as an OSM ``opening_hours`` rule, days with the same hours joined
    (``Mo-Fr 18:00-22:00; Sa 00:00-24:00``); empty when no hour is set. Hours as local wall-clock hours."""
    m = np.asarray(mask, dtype=bool).reshape(7, 24)
    spans_of: list[str] = []
    for d in range(7):
        spans, h = [], 0
        while h < 24:
            if m[d, h]:
                e = h
                while e < 24 and m[d, e]:
                    e += 1
                spans.append(f"{h:02d}:00-{e:02d}:00")
                h = e
            else:
                h += 1
        spans_of.append(",".join(spans))
    parts: list[str] = []
    d = 0
    while d < 7:
        e = d
        while e + 1 < 7 and spans_of[e + 1] == spans_of[d]:
            e += 1
        if spans_of[d]:
            days = _DAYS_OSM[d] if e == d else f"{_DAYS_OSM[d]}{',' if e == d + 1 else '-'}{_DAYS_OSM[e]}"
            parts.append(f"{days} {spans_of[d]}")
        d = e + 1
    return "; ".join(parts)


@dataclass
class Actions:
    """The actions of one question: column j of the hours matrix is action j.

    Attributes
    ----------
    kind : ndarray of int64, shape (n,)
        Index into ``KINDS``.
    ref : ndarray of int64, shape (n,)
        The station index (``extend``, ``24h``) or the candidate index (``site``) in the caller's lists.
    hours : ndarray of bool, shape (n, 168)
        The hours of the week the action adds (extensions) or opens (a site).
    """

    kind: np.ndarray
    ref: np.ndarray
    hours: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)


def hour_actions(station_open: np.ndarray, *, end_hour: int | None, n_sites: int, site_open: np.ndarray,
                 kinds: tuple[str, ...] = KINDS) -> Actions:
    """Every action worth asking about: an extension of each station to ``end_hour`` (None: no extensions) that
    adds an hour, round the clock for each station closed at some hour, and each of ``n_sites`` candidate sites
    open at ``site_open`` ((168,) bool). ``kinds`` leaves out the kinds not asked (a cap of 0)."""
    o = np.asarray(station_open, dtype=bool)
    kind: list[np.ndarray] = []
    ref: list[np.ndarray] = []
    hours: list[np.ndarray] = []
    if "extend" in kinds and end_hour is not None:
        ext = extension_hours(o, end_hour)
        j = np.flatnonzero(ext.any(axis=1))
        kind.append(np.full(len(j), KINDS.index("extend")))
        ref.append(j)
        hours.append(ext[j])
    if "24h" in kinds:
        j = np.flatnonzero(~o.all(axis=1))
        kind.append(np.full(len(j), KINDS.index("24h")))
        ref.append(j)
        hours.append(~o[j])
    site_mask = np.asarray(site_open, dtype=bool)
    if "site" in kinds and n_sites and site_mask.any():
        kind.append(np.full(n_sites, KINDS.index("site")))
        ref.append(np.arange(n_sites))
        hours.append(np.broadcast_to(site_mask, (n_sites, HOURS)))
    if not kind:
        return Actions(np.empty(0, np.int64), np.empty(0, np.int64), np.zeros((0, HOURS), bool))
    return Actions(np.concatenate(kind).astype(np.int64), np.concatenate(ref).astype(np.int64),
                   np.concatenate(hours).astype(bool))


@dataclass
class HourModel:
    """The hours question as a coverage matrix, with the figures its answers are read against.

    ``matrix`` has one row per (location, hour) element left uncovered that some action covers (``rows`` the
    element's index ``loc * 168 + hour``) and one column per action. Demand in orders; ``demand_total`` all of it
    (each order at its hour), ``uncovered`` the demand-hours with no open station within reach,
    ``uncoverable`` the part of it no action covers.
    """

    matrix: CoverageMatrix
    demand_total: float
    uncovered: float
    uncoverable: float


def action_pairs(station_pairs: tuple[np.ndarray, np.ndarray], site_pairs: tuple[np.ndarray, np.ndarray],
                 actions: Actions) -> tuple[np.ndarray, np.ndarray]:
    """(location, action) pairs sorted by location: a station's actions reach what the station reaches, a site's
    action what the site reaches. ``station_pairs``/``site_pairs``: (location index, station or site index)."""
    locs: list[np.ndarray] = []
    acts: list[np.ndarray] = []
    for pairs, is_site in ((station_pairs, False), (site_pairs, True)):
        dem, ref = (np.asarray(p, dtype=np.int64) for p in pairs)
        mine = np.flatnonzero((actions.kind == KINDS.index("site")) == is_site)
        if not len(mine) or not len(dem):
            continue
        order = np.argsort(actions.ref[mine], kind="stable")
        by_ref, act_of = actions.ref[mine][order], mine[order]
        lo = np.searchsorted(by_ref, ref, side="left")
        hi = np.searchsorted(by_ref, ref, side="right")
        n = hi - lo
        locs.append(np.repeat(dem, n))
        acts.append(act_of[concat_ranges(lo, n)])
    if not locs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    loc, act = np.concatenate(locs), np.concatenate(acts)
    order = np.argsort(loc, kind="stable")
    return loc[order], act[order]


def _pairs_at(pairs: tuple[np.ndarray, np.ndarray], needed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (location, site) pairs whose location is ``needed`` (bool per location)."""
    dem, ref = (np.asarray(p, dtype=np.int64) for p in pairs)
    keep = needed[dem]
    return dem[keep], ref[keep]


def hour_model(demand: csr_matrix, station_pairs: tuple[np.ndarray, np.ndarray], station_open: np.ndarray,
               site_pairs: tuple[np.ndarray, np.ndarray], actions: Actions, *,
               chunk: int = ELEMENTS_PER_CHUNK) -> HourModel:
    """The coverage matrix of the uncovered (location, hour) elements by the ``actions``.

    ``demand``: (n_loc, 168) orders by location and hour of the week (``weekly.profile.demand_by_hour``);
    ``station_pairs``: (location, station) pairs within the radius, ``station_open`` (m, 168) bool the stations'
    hours; ``site_pairs``: (location, candidate) pairs within the radius. An element covered by no action stays
    out of the matrix and counts in ``uncoverable``.
    """
    d = demand.tocsr()
    d.sum_duplicates()
    n_loc = d.shape[0]
    st_dem, st = (np.asarray(p, dtype=np.int64) for p in station_pairs)
    covered = covered_masks(st_dem, st, pack(np.asarray(station_open, dtype=bool)), n_loc)
    e_loc = np.repeat(np.arange(n_loc, dtype=np.int64), np.diff(d.indptr))
    e_hour = d.indices.astype(np.int64)
    e_w = d.data.astype(np.float64)
    is_cov = (covered[e_loc, e_hour >> 3] >> (e_hour & 7)) & 1
    left = (~is_cov.astype(bool)) & (e_w > 0)
    e_loc, e_hour, e_w = e_loc[left], e_hour[left], e_w[left]
    uncovered = float(e_w.sum())
    # only the places left uncovered at some hour need their actions (often a small part of all pairs)
    needed = np.zeros(n_loc, dtype=bool)
    needed[e_loc] = True
    p_loc, p_act = action_pairs(_pairs_at(station_pairs, needed), _pairs_at(site_pairs, needed), actions)
    starts = np.concatenate([[0], np.cumsum(np.bincount(p_loc, minlength=n_loc))])
    hours_packed = pack(actions.hours) if len(actions) else np.zeros((0, HOURS // 8), np.uint8)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    deg = starts[e_loc + 1] - starts[e_loc]
    cum = np.concatenate([[0], np.cumsum(deg)])
    lo = 0
    while lo < len(e_loc):
        hi = int(np.searchsorted(cum, cum[lo] + chunk, side="right")) - 1
        hi = min(max(hi, lo + 1), len(e_loc))
        n = deg[lo:hi]
        el = np.repeat(np.arange(lo, hi), n)
        act = p_act[concat_ranges(starts[e_loc[lo:hi]], n)]
        h = e_hour[el]
        on = ((hours_packed[act, h >> 3] >> (h & 7)) & 1).astype(bool)
        rows.append(el[on])
        cols.append(act[on])
        lo = hi
    r = np.concatenate(rows) if rows else np.empty(0, np.int64)
    c = np.concatenate(cols) if cols else np.empty(0, np.int64)
    used = np.unique(r)
    local = np.searchsorted(used, r)
    mat = csr_matrix((np.ones(len(r)), (local, c)), shape=(len(used), len(actions)))
    mat.sum_duplicates()
    mat.data[:] = 1.0
    cm = CoverageMatrix(mat, e_w[used], e_loc[used] * HOURS + e_hour[used])
    return HourModel(cm, float(d.sum()), uncovered, uncovered - float(e_w[used].sum()))


def open_after(station_open: np.ndarray, actions: Actions, chosen: np.ndarray) -> np.ndarray:
    """(m, 168) bool: the stations' hours after the chosen extension and round-the-clock actions."""
    out = np.array(station_open, dtype=bool, copy=True)
    for j in np.asarray(chosen, dtype=np.int64):
        if KINDS[int(actions.kind[j])] != "site":
            out[actions.ref[j]] |= actions.hours[j]
    return out


def uncovered_after(demand: csr_matrix, station_pairs: tuple[np.ndarray, np.ndarray], station_open: np.ndarray,
                    site_pairs: tuple[np.ndarray, np.ndarray], actions: Actions, chosen: np.ndarray) -> np.ndarray:
    """(n_loc,) demand-hours (orders) of each location still at an hour with no open station within reach once the
    ``chosen`` actions are taken (the stations' new hours, the new sites at their hours)."""
    d = demand.tocsr()
    n_loc = d.shape[0]
    opened = open_after(station_open, actions, chosen)
    st_dem, st = (np.asarray(p, dtype=np.int64) for p in station_pairs)
    sites = np.asarray([j for j in np.asarray(chosen, dtype=np.int64) if KINDS[int(actions.kind[j])] == "site"],
                       dtype=np.int64)
    si_dem, si = (np.asarray(p, dtype=np.int64) for p in site_pairs)
    keep = np.isin(si, actions.ref[sites])
    # a chosen site becomes one more "station" with its hours
    site_row = {int(actions.ref[j]): i for i, j in enumerate(sites)}
    extra = np.array([site_row[int(s)] for s in si[keep]], dtype=np.int64) + len(opened)
    dem = np.concatenate([st_dem, si_dem[keep]])
    who = np.concatenate([st, extra])
    masks = np.vstack([opened, actions.hours[sites]]) if len(sites) else opened
    order = np.argsort(dem, kind="stable")
    cov = covered_masks(dem[order], who[order], pack(masks), n_loc)
    e_loc = np.repeat(np.arange(n_loc), np.diff(d.indptr))
    h = d.indices.astype(np.int64)
    left = ((cov[e_loc, h >> 3] >> (h & 7)) & 1) == 0
    return np.bincount(e_loc[left], weights=d.data[left], minlength=n_loc)
