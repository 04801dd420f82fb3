"""Runs of a window's numeric values: what exact scores of a grown window read.

A window larger than its row sample is scored exactly on its every value when the binned
bound cannot decide (:mod:`monitor.drift.compare`). Those values are kept in the store as
*runs*, each of one numeric column (runs stored before 0009: of every column) and some
of the window's rows: ingestion writes the rows' values in row order, NaN where missing,
with each feature block (:mod:`monitor.blocks`); the statistics job writes the present
values, sorted, of rows it folds from their JSON; finalizing reads a column's runs
instead of decoding every stored row of the window again (:mod:`monitor.window_values`).

A payload is msgpack: column name -> little-endian float64 bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
import numpy as np

_FLOAT = np.dtype("<f8")


def encode_run(columns: Mapping[str, np.ndarray]) -> tuple[int, bytes]:
    """A run's payload, and how many values it holds (all columns)."""
    payload = {
        name: np.ascontiguousarray(v, dtype=_FLOAT).data.cast("B") for name, v in columns.items()
    }
    return sum(v.size for v in columns.values()), msgspec.msgpack.encode(payload)


def decode_run(payload: bytes) -> dict[str, np.ndarray]:
    """Column name -> sorted values (read-only views of ``payload``'s bytes)."""
    data = msgspec.msgpack.decode(payload, type=dict[str, memoryview])  # no copies
    return {name: np.frombuffer(raw, dtype=_FLOAT) for name, raw in data.items()}


def merge_sorted(runs: Sequence[np.ndarray]) -> np.ndarray:
    """One sorted array of sorted float64 ``runs``: a small run joins a large one by
    insertion (one pass over the large one); more runs are sorted together by numpy's
    default sort, which on x86 sorts with SIMD instructions and beats the stable sort's
    run merging by 1.3x (4 runs) to 4x (25 runs). Stability cannot matter: the values
    are floats without NaN, and equal ones are the same (-0.0 is stored as 0.0)."""
    if not runs:
        return np.empty(0)
    if len(runs) == 1:
        return runs[0]
    if len(runs) == 2:
        large, small = sorted(runs, key=len, reverse=True)
        if small.size * 64 <= large.size:
            return np.insert(large, np.searchsorted(large, small), small)
    return np.sort(np.concatenate(runs))
