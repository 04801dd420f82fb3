"""Feature blocks: a window's new predictions column by column, from ingestion to the fold.

Ingestion stores each prediction's features as the JSON object it logged. Folding those
rows meant reading every row back and decoding its JSON again, value by value in Python:
two thirds of the statistics job's time at a million rows. So ingestion, which holds the
rows already, also writes one *block* per window per chunk, in the same transaction as
the rows (:meth:`storage.ingest.IngestRepository.commit`): each row's sample key and each
column as an array. The schema's numeric features are written beside the block, each as
a run of the window's values (``window_values``, :mod:`monitor.window_values`): the fold
reads them with the block, and they stay, as the values finalize scores a grown window
on, where the fold used to write them again. The statistics job folds the blocks after
its cursor instead of the rows, and deletes them in the transaction that advances the
cursor: a block lives only until it is folded. Rows without a block (stored before
blocks existed, or a chunk whose block could not be encoded) are folded from their JSON
as before; the states and values are the same either way (tests/monitor/test_blocks.py).

A column in a block is encoded one of two ways (a run is always float64):

- ``f8``: float64, NaN where missing, when every value is a number (booleans are not)
  that float64 holds exactly as the fold would convert it;
- ``values``: the distinct values (msgpack) and one int32 code per row, -1 for missing
  and -2 for a value that is not a scalar (a type error in every kind of column).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pandas as pd

from monitor.drift.encoded import MISSING, NOT_SCALAR, EncodedColumn
from monitor.drift.runs import decode_run, encode_run
from monitor.drift.state import row_keys
from monitor.records import PARSED_FEATURES
from storage.rows import EncodedBlock

logger = logging.getLogger(__name__)

SCORE = "@score"  # the outputs, as monitor.statistics profiles them
PREDICTION = "@prediction"
EXACT_INTEGERS = 2.0**53  # beyond, float64 rounds integers (and their category texts)
_NUMBERS = frozenset({int, float, type(None)})
_TEXTS = frozenset({str, type(None)})
_SCALARS = (str, int, float, bool)
_FORMAT = 1


@dataclass(frozen=True)
class Block:
    keys: np.ndarray  # uint64: each row's sample key (monitor.drift.state.row_keys)
    columns: dict[str, EncodedColumn]

    @property
    def rows(self) -> int:
        return int(self.keys.size)


class BlockEncoder:
    """Callable: stored prediction rows (``id``, ``features`` JSON text, ``prediction``
    JSON text or None, ``score``) -> their block, or None when it cannot be encoded (the
    rows are then folded from their JSON).

    ``names``: the schema's features, the only ones a profile has; each row's JSON is
    decoded straight into a struct of them (msgspec, C), which costs a third of a
    dictionary per row and a lookup per value. None: every feature found, from
    dictionaries."""

    def __init__(self, names: Sequence[str] | None = None, numeric: Collection[str] = ()) -> None:
        self.names = list(names or ())
        # the schema's numeric features: ingestion stored only numbers or null in them
        self.numeric = frozenset(numeric)
        fields = [f"f{i}" for i in range(len(self.names))]
        struct = msgspec.defstruct(
            "Features",
            [(f, Any, None) for f in fields],
            rename=dict(zip(fields, self.names, strict=True)),
            gc=False,
        )
        self._decode = msgspec.json.Decoder(struct).decode
        self._getters = [attrgetter(f) for f in fields]

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> EncodedBlock | None:
        try:
            runs: dict[str, tuple[int, bytes]] = {}
            columns = self._columns(rows, runs) if self.names else _dict_columns(rows)
            columns[SCORE] = _encode([r["score"] for r in rows])
            served = [r["prediction"] for r in rows]
            columns[PREDICTION] = _encode([None if p is None else orjson.loads(p) for p in served])
            keys = row_keys([r["id"] for r in rows])
            payload = msgspec.msgpack.encode(
                {"format": _FORMAT, "keys": keys.tobytes(), "columns": columns}
            )
            return EncodedBlock(payload, runs)
        except Exception:  # noqa: BLE001 - e.g. an integer beyond msgpack's 64 bits
            logger.warning("no feature block for %d rows: folded from their JSON", len(rows))
            return None

    def _columns(
        self, rows: Sequence[Mapping[str, Any]], runs: dict[str, tuple[int, bytes]]
    ) -> dict[str, list[Any]]:
        """Columns of the rows' features, and into ``runs`` the numeric ones: from the
        structs the fast path of ingestion decoded them into
        (:data:`~monitor.records.PARSED_FEATURES`, fields f0, f1, ... in schema order, as
        here), else from their JSON."""
        decode = self._decode
        parsed = [r.get(PARSED_FEATURES) for r in rows]
        if None in parsed:
            pairs = zip(rows, parsed, strict=True)
            parsed = [decode(r["features"]) if p is None else p for r, p in pairs]
        columns = {}
        for name, getter in zip(self.names, self._getters, strict=True):
            values = list(map(getter, parsed))
            if name in self.numeric:
                # float64 straight away, as the fold converts it (no look at each value's
                # type: ingestion stored only numbers or null in a numeric feature)
                runs[name] = encode_run({name: np.array(values, dtype=np.float64)})
            else:
                columns[name] = _encode(values)
        return columns


def _dict_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    features = [orjson.loads(r["features"]) for r in rows]
    names: dict[str, None] = {}
    for f in features:
        names.update(dict.fromkeys(f))
    return {name: _encode([f.get(name) for f in features]) for name in names}


def _encode(values: list[Any]) -> list[Any]:
    kinds = set(map(type, values))
    if kinds <= _NUMBERS:
        floats = np.array(values, dtype=np.float64)
        if not (np.abs(floats) > EXACT_INTEGERS).any():
            return ["f8", floats.tobytes()]
    if kinds <= _TEXTS:  # hashed in C; None -> -1 (MISSING)
        found, texts = pd.factorize(np.array(values, dtype=object), use_na_sentinel=True)
        return ["values", texts.tolist(), found.astype(np.int32).tobytes()]
    # the distinct values, True, 1, 1.0, 0.0 and -0.0 all apart
    index: dict[tuple[Any, ...], int] = {}
    uniques: list[Any] = []
    codes = np.empty(len(values), dtype=np.int32)
    for i, value in enumerate(values):
        if value is None:
            codes[i] = MISSING
        elif isinstance(value, _SCALARS):
            key = _key(value)
            code = index.get(key)
            if code is None:
                code = index[key] = len(uniques)
                uniques.append(value)
            codes[i] = code
        else:
            codes[i] = NOT_SCALAR
    return ["values", uniques, codes.tobytes()]


def _key(value: Any) -> tuple[Any, ...]:
    if type(value) is float:
        return float, value, math.copysign(1.0, value)  # -0.0 == 0.0, yet its own value
    return type(value), value


def decode(payload: bytes, runs: Mapping[str, bytes] | None = None) -> Block:
    """A stored block, with the runs of numeric features ingestion wrote with it (in row
    order, NaN where missing: a column of the block, as ``f8``)."""
    data = msgspec.msgpack.decode(payload)
    if data.get("format") != _FORMAT:
        raise ValueError(f"feature block format {data.get('format')!r} is not {_FORMAT}")
    columns = {}
    for name, encoded in data["columns"].items():
        if encoded[0] == "f8":
            columns[name] = EncodedColumn(floats=np.frombuffer(encoded[1], dtype=np.float64))
        else:
            codes = np.frombuffer(encoded[2], dtype=np.int32)
            columns[name] = EncodedColumn(uniques=encoded[1], codes=codes)
    for payload_ in (runs or {}).values():
        for name, floats in decode_run(payload_).items():
            columns[name] = EncodedColumn(floats=floats)
    return Block(np.frombuffer(data["keys"], dtype=np.uint64), columns)
