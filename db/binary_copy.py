"""Rows for PostgreSQL's binary COPY, encoded column-wise with numpy (no Python object per row or value).

A binary COPY row is a 16-bit field count, then per field a 32-bit length (-1 for NULL) and the value in network
byte order. Rows are grouped by which of their fields are NULL: within a group every row has the same layout, so it
is one numpy structured array; the groups are written one after another (COPY does not keep an order anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

KINDS: dict[str, str] = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "u1"}
"""PostgreSQL type name: numpy dtype of its binary value. ``bytea`` columns take an (n, k) uint8 array."""


@dataclass(frozen=True)
class Column:
    """One column to COPY: its values (length n; ``bytea``: an (n, k) uint8 array of fixed-length values), its
    PostgreSQL type (a key of ``KINDS`` or ``bytea``) and where it is NULL (None: nowhere)."""

    values: np.ndarray
    kind: str
    null: np.ndarray | None = None


def _field(col: Column, j: int) -> list[tuple[str, str] | tuple[str, str, tuple[int, ...]]]:
    if col.kind == "bytea":
        return [(f"l{j}", ">i4"), (f"v{j}", "u1", (col.values.shape[1],))]
    return [(f"l{j}", ">i4"), (f"v{j}", KINDS[col.kind])]


def _width(col: Column) -> int:
    return int(col.values.shape[1]) if col.kind == "bytea" else np.dtype(KINDS[col.kind]).itemsize


def encode_rows(columns: list[Column]) -> bytes:
    """The whole COPY ... FROM STDIN (FORMAT BINARY) stream (header, rows, trailer) of ``columns``, all of one
    length, in the order the COPY statement names them."""
    n = len(columns[0].values) if columns else 0
    if n == 0:
        return HEADER + TRAILER
    for col in columns:
        if col.kind != "bytea" and col.kind not in KINDS:
            raise ValueError(f"column kind {col.kind!r}: expected one of {', '.join([*KINDS, 'bytea'])}")
        if len(col.values) != n:
            raise ValueError("the columns differ in length")
    nullable = [j for j, col in enumerate(columns) if col.null is not None and col.null.any()]
    pattern = np.zeros(n, dtype=np.int64)
    for bit, j in enumerate(nullable):
        null = columns[j].null
        assert null is not None
        pattern |= null.astype(np.int64) << bit
    out = [HEADER]
    for key in np.unique(pattern):
        rows = np.flatnonzero(pattern == key)
        nulls = {j for bit, j in enumerate(nullable) if (int(key) >> bit) & 1}
        layout: list[tuple[str, str] | tuple[str, str, tuple[int, ...]]] = [("n", ">i2")]
        for j, col in enumerate(columns):
            layout += [(f"l{j}", ">i4")] if j in nulls else _field(col, j)
        rec = np.empty(len(rows), dtype=np.dtype(layout))
        rec["n"] = len(columns)
        for j, col in enumerate(columns):
            if j in nulls:
                rec[f"l{j}"] = -1
            else:
                rec[f"l{j}"] = _width(col)
                rec[f"v{j}"] = col.values[rows]
        out.append(rec.tobytes())
    out.append(TRAILER)
    return b"".join(out)
