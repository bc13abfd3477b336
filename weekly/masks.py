"""Hour masks: a boolean (n, 168) matrix packed as (n, 21) uint8, bit h (of byte h // 8, little-endian bit order as
``numpy.packbits(..., bitorder="little")``) set when open (a station) or covered (a demand location) at hour h; and
the masks of demand locations from the stations within reach of each.
"""

from __future__ import annotations

import numpy as np

from yizhan.errors import InvalidInput
from yizhan.weekly.week import HOURS, WORDS

PAIRS_PER_CHUNK = 4_000_000
"""Demand–site pairs handled at once by ``covered_masks`` (about 21 bytes each gathered: 84 MB)."""
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
"""Set bits of each byte value."""


def pack(mask: np.ndarray) -> np.ndarray:
    """A boolean (n, 168) hour mask packed as (n, 21) uint8; a (168,) mask as (21,)."""
    m = np.asarray(mask, dtype=bool)
    if m.shape[-1] != HOURS:
        raise InvalidInput(f"an hour mask has {HOURS} hours in its last axis, not {m.shape[-1]}")
    return np.packbits(m, axis=-1, bitorder="little")


def unpack(packed: np.ndarray) -> np.ndarray:
    """A packed (n, 21) uint8 hour mask as boolean (n, 168); (21,) as (168,)."""
    p = np.asarray(packed, dtype=np.uint8)
    if p.shape[-1] != WORDS:
        raise InvalidInput(f"a packed hour mask has {WORDS} bytes in its last axis, not {p.shape[-1]}")
    return np.unpackbits(p, axis=-1, count=HOURS, bitorder="little").astype(bool)


def hours_set(packed: np.ndarray) -> np.ndarray:
    """How many hours (0–168) each packed mask (n, 21) has set, int16."""
    counts: np.ndarray = POPCOUNT[np.asarray(packed, dtype=np.uint8)].sum(axis=-1, dtype=np.int16)
    return counts


def covered_masks(dem: np.ndarray, site: np.ndarray, open_packed: np.ndarray, n_loc: int, *,
                  chunk: int = PAIRS_PER_CHUNK) -> np.ndarray:
    """(n_loc, 21) packed masks of the demand locations: bit h set when a site within reach of the location is open
    at hour h (the OR of the open masks of its sites).

    ``dem``, ``site``: the pairs within the radius (``coverage.reach.Pairs`` without the metres; sorted by demand
    as ``Pairs`` are, otherwise sorted here), demand indices 0 … n_loc-1 and site indices into ``open_packed``
    ((m, 21) uint8, ``pack`` of ``Availability.open``). A location without a pair has no hour set. The pairs are
    taken ``chunk`` at a time, so memory stays bounded for tens of millions of pairs.
    """
    dem = np.asarray(dem, dtype=np.int64)
    site = np.asarray(site, dtype=np.int64)
    open_packed = np.ascontiguousarray(open_packed, dtype=np.uint8)
    if len(dem) != len(site):
        raise InvalidInput(f"pairs: {len(dem)} demand indices but {len(site)} site indices")
    if open_packed.ndim != 2 or open_packed.shape[1] != WORDS:
        raise InvalidInput(f"packed open masks must be (m, {WORDS}) uint8, not {open_packed.shape}")
    out = np.zeros((n_loc, WORDS), dtype=np.uint8)
    if not len(dem):
        return out
    if dem.min() < 0 or dem.max() >= n_loc or site.min() < 0 or site.max() >= len(open_packed):
        raise InvalidInput("pairs: a demand or site index lies outside the locations or the sites given")
    if (np.diff(dem) < 0).any():
        order = np.argsort(dem, kind="stable")
        dem, site = dem[order], site[order]
    for lo in range(0, len(dem), chunk):
        d = dem[lo:lo + chunk]
        rows = open_packed[site[lo:lo + chunk]]
        starts = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
        reduced = np.bitwise_or.reduceat(rows, starts, axis=0)
        out[d[starts]] |= reduced  # a location split across two chunks is ORed twice: unique within a chunk
    return out
