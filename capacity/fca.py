"""Two-step floating catchment area: a station's seats against the demand that can reach it, on sparse pairs.

The classic two-step floating catchment area (2SFCA, Luo & Wang 2003) and the enhanced one with distance decay
(E2SFCA, Luo & Qi 2009), as PySAL ``access`` computes them (``two_stage_fca``, ``enhanced_two_stage_fca``). With
``d_ij`` the distance in metres from demand location i to station j (every pair within the radius ``d0``; straight
line or along the streets, whatever made the pairs), ``w(d)`` the decay weight, ``P_i`` the demand at i (orders)
and ``S_j`` the seats of station j:

1. catchment demand of each station: ``D_j = sum_i w(d_ij) P_i``;
2. its supply-to-demand ratio: ``R_j = S_j / D_j`` (seats per order);
3. accessibility of each location: ``A_i = sum_j w(d_ij) R_j`` (seats per order within reach).

Both sums are sparse matrix-vector products over the pairs (scipy.sparse): no dense demand x station matrix.

Where this departs from PySAL, on inputs it leaves undefined: a station whose catchment demand is 0 has no ratio
(NaN here; PySAL divides by zero and hands ``inf`` to every location within its reach); a location that reaches no
station has accessibility 0 (PySAL leaves it out). Elsewhere the figures agree to 1e-9 (``tests/test_capacity.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse import csr_matrix

DecayKind = Literal["none", "stepwise", "gaussian"]
DECAY_KINDS: tuple[DecayKind, ...] = ("none", "stepwise", "gaussian")
LUO_QI_WEIGHTS: tuple[float, ...] = (1.0, 0.68, 0.22)
"""Luo & Qi's (2009) weights for the near, middle and far third of the catchment (PySAL's default E2SFCA steps)."""
GAUSSIAN_SIGMA_SHARE = 0.38
"""The gaussian's default width as a share of the radius: ``exp(-(1/3)² / (2 · 0.38²)) = 0.74`` and
``exp(-(2/3)² / (2 · 0.38²)) = 0.21`` at a third and two thirds of the radius, close to Luo & Qi's steps 0.68, 0.22."""


@dataclass(frozen=True)
class Decay:
    """How a pair's weight falls with its distance, in metres; 0 beyond the radius ``radius_m`` in every kind.

    - ``none``: classic 2SFCA, ``w(d) = 1`` for ``d <= radius_m``.
    - ``stepwise``: E2SFCA of Luo & Qi (2009), ``w(d) = steps[k].weight`` for the first step whose upper bound
      ``steps[k].bound_m >= d`` (PySAL ``access.weights.step_fn``); by default the radius cut in thirds with weights
      1, 0.68, 0.22.
    - ``gaussian``: E2SFCA with ``w(d) = exp(-d² / (2 sigma_m²))`` (PySAL ``access.weights.gaussian``, unnormalised:
      ``w(0) = 1``); by default ``sigma_m = 0.38 · radius_m``.
    """

    kind: DecayKind
    radius_m: float
    steps: tuple[tuple[float, float], ...] = ()
    """``(upper bound in metres, weight)``, bounds increasing (``stepwise`` only)."""
    sigma_m: float = 0.0
    """Width of the gaussian in metres (``gaussian`` only)."""

    @property
    def method(self) -> str:
        """``2SFCA`` without decay, ``E2SFCA`` with one."""
        return "2SFCA" if self.kind == "none" else "E2SFCA"

    def weights(self, dist_m: np.ndarray) -> np.ndarray:
        """The weight of each distance (metres), float64, same shape."""
        d = np.asarray(dist_m, dtype=np.float64)
        inside = d <= self.radius_m
        if self.kind == "none":
            return inside.astype(np.float64)
        if self.kind == "gaussian":
            return np.where(inside, np.exp(-d * d / (2.0 * self.sigma_m**2)), 0.0)
        bounds = np.array([b for b, _ in self.steps])
        values = np.append([w for _, w in self.steps], 0.0)  # beyond the last bound: 0
        return np.where(inside, values[np.searchsorted(bounds, d, side="left")], 0.0)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: ``method``, ``kind``, ``formula``, ``radius_m`` and the kind's parameters."""
        out: dict[str, Any] = {"method": self.method, "kind": self.kind, "radius_m": self.radius_m}
        if self.kind == "none":
            out["formula"] = "w(d) = 1 for d <= radius_m"
        elif self.kind == "stepwise":
            out["formula"] = "w(d) = weight of the first step with bound_m >= d (Luo & Qi 2009)"
            out["steps"] = [{"bound_m": b, "weight": w} for b, w in self.steps]
        else:
            out["formula"] = "w(d) = exp(-d^2 / (2 sigma_m^2)) for d <= radius_m"
            out["sigma_m"] = self.sigma_m
        return out


def _check_radius(radius_m: float) -> float:
    r = float(radius_m)
    if not np.isfinite(r) or r <= 0:
        raise ValueError(f"半径须为正数（米）/ radius must be a positive number of metres: {radius_m!r}")
    return r


def no_decay(radius_m: float) -> Decay:
    """Classic 2SFCA: every pair within ``radius_m`` metres weighs 1."""
    return Decay("none", _check_radius(radius_m))


def stepwise_decay(radius_m: float, weights: tuple[float, ...] = LUO_QI_WEIGHTS) -> Decay:
    """E2SFCA steps: the radius (metres) cut into ``len(weights)`` equal rings, the k-th ring weighing ``weights[k]``
    (Luo & Qi 2009: thirds, 1, 0.68, 0.22)."""
    r = _check_radius(radius_m)
    if not weights or any(not np.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"距离衰减权重须为非负数 / decay weights must be non-negative numbers: {weights!r}")
    k = len(weights)
    return Decay("stepwise", r, steps=tuple((r * (i + 1) / k, float(w)) for i, w in enumerate(weights)))


def gaussian_decay(radius_m: float, sigma_m: float | None = None) -> Decay:
    """E2SFCA gaussian: ``exp(-d² / (2 sigma_m²))`` within ``radius_m`` metres; ``sigma_m`` (metres) defaults to
    ``GAUSSIAN_SIGMA_SHARE · radius_m``."""
    r = _check_radius(radius_m)
    s = GAUSSIAN_SIGMA_SHARE * r if sigma_m is None else float(sigma_m)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"高斯衰减宽度须为正数（米）/ gaussian sigma must be a positive number of metres: {sigma_m!r}")
    return Decay("gaussian", r, sigma_m=s)


def decay_named(kind: str, radius_m: float) -> Decay:
    """The decay of that name (``none``, ``stepwise``, ``gaussian``) with its default parameters."""
    if kind == "none":
        return no_decay(radius_m)
    if kind == "stepwise":
        return stepwise_decay(radius_m)
    if kind == "gaussian":
        return gaussian_decay(radius_m)
    raise ValueError(f"未知的距离衰减 / unknown distance decay: {kind!r} (accepted: {', '.join(DECAY_KINDS)})")


@dataclass
class Fca:
    """A two-step floating catchment, per demand location (n) and per station (m)."""

    accessibility: np.ndarray
    """(n,) ``A_i``: seats per unit of demand within reach (decay-weighted); 0 where no station with seats and
    demand in its catchment is within reach."""
    ratio: np.ndarray
    """(m,) ``R_j``: seats per unit of decay-weighted catchment demand; NaN when the seats are unknown or the
    catchment holds no demand (0 seats give 0)."""
    catchment: np.ndarray
    """(m,) ``D_j``: the decay-weighted demand within the station's reach."""
    without_seats: np.ndarray
    """(m,) bool: seats unknown (NaN), left out of the supply."""


def pair_matrix(dem: np.ndarray, site: np.ndarray, dist_m: np.ndarray, n: int, m: int, decay: Decay) -> csr_matrix:
    """The sparse (n x m) matrix of decay weights ``w(d_ij)`` from pairs (demand index, station index, metres);
    pairs beyond the radius or of weight 0 are dropped, a repeated pair counts once at its shortest distance."""
    dem = np.asarray(dem, dtype=np.int64)
    site = np.asarray(site, dtype=np.int64)
    dist = np.asarray(dist_m, dtype=np.float64)
    if not (len(dem) == len(site) == len(dist)):
        raise ValueError(f"配对数组长度不一 / pair arrays differ in length: {len(dem)}, {len(site)}, {len(dist)}")
    out = np.flatnonzero((dem < 0) | (dem >= n) | (site < 0) | (site >= m))
    if len(out):
        k = out[0]
        raise ValueError(f"配对下标越界 / pair index out of range: pair {k}: demand {dem[k]}, station {site[k]} "
                         f"(accepted: demand 0–{n - 1}, station 0–{m - 1})")
    bad = np.flatnonzero(np.isnan(dist) | (dist < 0))
    if len(bad):
        raise ValueError(f"距离须为非负数（米）/ distance must be non-negative metres: pair {bad[0]}: "
                         f"{float(dist[bad[0]])}")
    w = decay.weights(dist)
    keep = w > 0
    if not keep.all():  # copying millions of pairs costs more than the products: only when some go
        dem, site, dist, w = dem[keep], site[keep], dist[keep], w[keep]
    if len(dem) > 1:
        key = dem * m + site
        if (np.diff(key) <= 0).any():  # not strictly sorted by demand then station: sort, keep the shortest
            order = np.lexsort((dist, key))
            key, dem, site, w = key[order], dem[order], site[order], w[order]
            first = np.ones(len(key), dtype=bool)
            first[1:] = key[1:] != key[:-1]
            dem, site, w = dem[first], site[first], w[first]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(dem, minlength=n))])
    return csr_matrix((w, site, indptr), shape=(n, m))


def supply_of(supply: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Seats as float64 (None and NaN left out as 0) and the (m,) bool of stations whose seats are unknown."""
    s = np.asarray(supply, dtype=np.float64)
    unknown = np.isnan(s)
    bad = np.flatnonzero(np.isinf(s) | (~unknown & (s < 0)))
    if len(bad):
        raise ValueError(f"座位数须为非负数 / seats must be a non-negative number: station {bad[0]}: "
                         f"{float(s[bad[0]])}")
    return np.where(unknown, 0.0, s), unknown


def check_demand(demand: ArrayLike, what: str = "location") -> np.ndarray:
    """Demand as float64; refused when negative, NaN or infinite (``what`` names an element in the message)."""
    p = np.asarray(demand, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0))
    if len(bad):
        raise ValueError(f"需求须为非负有限数（订单）/ demand must be a finite non-negative number of orders: "
                         f"{what} {bad[0]}: {float(p.flat[bad[0]])}")
    return p


def ratio_of(seats: np.ndarray, catchment: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """``seats / catchment`` where ``usable`` and the catchment holds demand, NaN elsewhere (any matching shapes)."""
    ok = usable & (catchment > 0)
    return np.where(ok, seats / np.where(ok, catchment, 1.0), np.nan)


def two_step_fca(dem: np.ndarray, site: np.ndarray, dist_m: np.ndarray, demand: np.ndarray,
                 supply: ArrayLike, *, decay: Decay) -> Fca:
    """2SFCA (``decay = no_decay(r)``) or E2SFCA (``stepwise_decay``, ``gaussian_decay``) over demand–station pairs.

    Parameters
    ----------
    dem, site, dist_m : ndarray
        The pairs: demand location index, station index, distance in metres (every pair within the radius, as
        ``yizhan.coverage.reach`` makes them; any order).
    demand : ndarray, shape (n,)
        Demand at each location (orders, >= 0).
    supply : array-like, shape (m,)
        Seats of each station; NaN or None when unknown (left out of the supply and counted in ``without_seats``).
    decay : Decay
        The distance decay and the radius (metres).
    """
    p = check_demand(demand)
    seats, unknown = supply_of(supply)
    w = pair_matrix(dem, site, dist_m, len(p), len(seats), decay)
    catchment = w.T @ p
    ratio = ratio_of(seats, catchment, ~unknown)
    accessibility = w @ np.nan_to_num(ratio, nan=0.0)
    return Fca(accessibility=accessibility, ratio=ratio, catchment=catchment, without_seats=unknown)
