"""A column stored as an array (:mod:`monitor.blocks`), as the fold reads it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.drift.profile import category_text

MISSING = -1  # codes of a ``values`` column
NOT_SCALAR = -2


@dataclass(frozen=True)
class EncodedColumn:
    """One column of a block, as the fold reads it (:func:`monitor.drift.state.partial`)."""

    floats: np.ndarray | None = None  # f8: the values, NaN where missing
    uniques: Sequence[Any] = ()  # values: the distinct values
    codes: np.ndarray | None = None  # values: an index into uniques per row (or < 0)

    def __len__(self) -> int:
        data = self.floats if self.floats is not None else self.codes
        assert data is not None
        return int(data.size)

    def numbers(self) -> np.ndarray:
        """The values as ``partial`` reads a numeric column: float64 when they are all
        numbers, else objects (None where missing, ``{}`` where not a scalar)."""
        if self.floats is not None:
            return self.floats
        assert self.codes is not None
        table = np.empty(len(self.uniques) + 2, dtype=object)
        table[: len(self.uniques)] = list(self.uniques)
        table[MISSING] = None
        table[NOT_SCALAR] = {}
        return table[self.codes]

    def counted(self) -> list[tuple[Any, int]]:
        """(value, rows) pairs, None for missing, ``{}`` for a value not a scalar."""
        if self.floats is not None:
            present = self.floats[~np.isnan(self.floats)]
            values, counts = np.unique(present, return_counts=True)
            pairs: list[tuple[Any, int]] = list(zip(values.tolist(), counts.tolist(), strict=True))
            if present.size < self.floats.size:
                pairs.append((None, int(self.floats.size - present.size)))
            return pairs
        assert self.codes is not None
        counts = np.bincount(self.codes + 2, minlength=len(self.uniques) + 2).tolist()
        pairs = [(v, n) for v, n in zip(self.uniques, counts[2:], strict=True) if n]
        if counts[1]:
            pairs.append((None, counts[1]))
        if counts[0]:
            pairs.append(({}, counts[0]))
        return pairs

    def texts(self, rows: np.ndarray) -> np.ndarray:
        """Category texts of some rows (None where missing or not a label): the texts of
        distinct values among them are made once, not once per row."""
        if self.floats is not None:
            picked = self.floats[rows]
            out = np.full(picked.size, None, dtype=object)
            present = ~np.isnan(picked)
            out[present] = [category_text(v) for v in picked[present].tolist()]
            return out
        assert self.codes is not None
        picked = self.codes[rows]
        table = np.full(len(self.uniques) + 2, None, dtype=object)  # codes -1, -2: None
        for code in np.unique(picked[picked >= 0]).tolist():
            table[code] = category_text(self.uniques[code])
        return table[picked]
