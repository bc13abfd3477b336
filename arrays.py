"""Small numpy helpers shared by the analysis' array cores."""

from __future__ import annotations

import numpy as np


def concat_ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start[i], start[i] + count[i])`` for every i, as one int64 array (the rows of many
    runs of an array, or the rank within each run with ``start`` zero)."""
    start, count = np.asarray(start, dtype=np.int64), np.asarray(count, dtype=np.int64)
    total = int(count.sum())
    if not total:
        return np.empty(0, np.int64)
    return np.repeat(start - np.cumsum(count) + count, count) + np.arange(total)


def lattice_code(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """A square's column and row as one number (each within 32 bits, as any lattice on Earth in metres)."""
    return (np.asarray(ix, np.int64) << 32) | (np.asarray(iy, np.int64) & 0xFFFFFFFF)


def lattice_squares(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The columns and rows of squares numbered by ``lattice_code``."""
    code = np.asarray(code, np.int64)
    return code >> 32, (code & 0xFFFFFFFF).astype(np.uint32).astype(np.int32).astype(np.int64)
