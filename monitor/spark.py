"""The Spark backend: window states of a prediction log that outgrew one machine.

The same functions as the local backend do the work. Each Spark partition turns its Arrow
record batches into per-window states with :func:`~monitor.drift.state.partial` and merges
them with :func:`~monitor.drift.state.merge` (``DataFrame.mapInArrow``); the executors then
merge the partition states of each window (``reduceByKey``), so the driver receives one
state per window. States merge bit for bit in any order, so the result equals the local
backend's whatever the partitioning.

pyspark is imported here and nowhere else in :mod:`monitor`; ``import monitor`` does not
load it. Executors import this module too, so they need driftd installed (see
``docs/spark.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from monitor.drift.profile import ReferenceProfile
from monitor.drift.state import WindowState, merge, partial, row_keys
from monitor.windows import EPOCH, TimeWindows

STATES_SCHEMA = "window long, state string"  # window start in epoch seconds, state JSON

_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}


def window_states(
    df: DataFrame,
    profile: ReferenceProfile,
    *,
    windows: TimeWindows,
    id_col: str = "id",
    ts_col: str = "ts",
    feature_cols: Sequence[str] | None = None,
    features_col: str | None = None,
    sample_size: int = 5000,
) -> dict[datetime, WindowState]:
    """The state of every window of the prediction log ``df``, keyed by window start.

    ``df`` has an id column (text or integer), an event-time column (timestamp, with or
    without time zone; one without is read as UTC) and one column per feature, or a
    struct or map column ``features_col`` holding the features by name. ``feature_cols``
    picks the profiled columns to read (default: all of them); a profiled column that is
    not read counts as missing in every row.

    Rows without id or event time, and rows with an infinite numeric feature, are
    skipped: local ingestion quarantines them. NaN counts as a missing value.
    """
    if sample_size < 1:
        raise ValueError(f"sample_size must be positive, got {sample_size}")
    names = list(profile.columns) if feature_cols is None else list(feature_cols)
    unknown = [n for n in names if n not in profile.columns]
    if unknown:
        raise ValueError(
            f"columns {unknown} are not in the profile of model {profile.model_version!r}"
        )
    selected = _select(df, id_col, ts_col, names, features_col)
    work = PartitionStates(_slim(profile), tuple(names), windows, sample_size)
    partials = selected.mapInArrow(work, STATES_SCHEMA)
    merged = partials.rdd.map(_decode).reduceByKey(merge).collect()
    return {
        windows.start_of(EPOCH + timedelta(seconds=seconds)): state
        for seconds, state in sorted(merged, key=lambda pair: pair[0])
    }


def read_parquet_states(
    spark: SparkSession, path: str | Sequence[str], profile: ReferenceProfile, **options: Any
) -> dict[datetime, WindowState]:
    """:func:`window_states` of the Parquet dataset at ``path`` (a file, a directory or
    several paths; anything ``spark.read.parquet`` reads)."""
    paths = [path] if isinstance(path, str) else list(path)
    return window_states(spark.read.parquet(*paths), profile, **options)


@dataclass(frozen=True)
class PartitionStates:
    """The ``mapInArrow`` function: Arrow batches of one partition -> one state per window.

    Input batches hold, by position, the row id (text), the event time (timestamp) and the
    features in ``names`` order; output rows follow :data:`STATES_SCHEMA`.
    """

    profile: ReferenceProfile
    names: tuple[str, ...]
    windows: TimeWindows
    sample_size: int

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        states: dict[int, WindowState] = {}
        for batch in batches:
            for start, state in batch_states(
                batch, self.profile, self.names, self.windows, self.sample_size
            ).items():
                states[start] = merge(states[start], state) if start in states else state
        for start, state in states.items():  # one row a batch: states can be megabytes
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array([start], pa.int64()),
                    pa.array([orjson.dumps(state.to_dict()).decode()], pa.string()),
                ],
                names=["window", "state"],
            )


def batch_states(
    batch: pa.RecordBatch,
    profile: ReferenceProfile,
    names: Sequence[str],
    windows: TimeWindows,
    sample_size: int,
) -> dict[int, WindowState]:
    """The state of each window in one Arrow batch (id, event time, features by position),
    keyed by window start in epoch seconds."""
    micros = _micros(batch.column(1))
    columns = {
        name: _values(batch.column(2 + i), profile.columns[name].numeric)
        for i, name in enumerate(names)
    }
    ids = batch.column(0).to_pylist()
    infinite = np.zeros(len(micros), dtype=bool)
    for values in columns.values():
        if values.dtype.kind == "f":
            infinite |= np.isinf(values)
    if infinite.any():
        keep = np.flatnonzero(~infinite)
        micros = micros[keep]
        columns = {name: values[keep] for name, values in columns.items()}
        ids = [ids[i] for i in keep.tolist()]
    if not ids:
        return {}
    keys = row_keys(ids)
    index = micros // (windows.size // timedelta(microseconds=1))  # floor, as start_of
    order = np.argsort(index, kind="stable")
    bounds = np.flatnonzero(np.r_[True, index[order][1:] != index[order][:-1], True])
    out: dict[int, WindowState] = {}
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        rows = order[lo:hi]
        start = windows.start_of(EPOCH + timedelta(microseconds=int(micros[rows[0]])))
        window_batch: dict[str, Any] = {name: values[rows] for name, values in columns.items()}
        out[(start - EPOCH) // timedelta(seconds=1)] = partial(
            window_batch, keys[rows], profile, sample_size=sample_size
        )
    return out


def _select(
    df: DataFrame, id_col: str, ts_col: str, names: Sequence[str], features_col: str | None
) -> DataFrame:
    """Id, event time and features by position, rows without id or event time dropped."""
    fields = {f.name: f.dataType for f in df.schema.fields}
    for name in (id_col, ts_col, features_col):
        if name is not None and name not in fields:
            raise ValueError(f"the prediction log has no column {name!r}; it has {sorted(fields)}")
    id_type, ts_type = fields[id_col], fields[ts_col]
    if isinstance(id_type, T.IntegralType):
        rid = F.col(_quoted(id_col)).cast("string")
    elif isinstance(id_type, T.StringType):
        rid = F.col(_quoted(id_col))
    else:
        raise TypeError(
            f"id column {id_col!r} must be text or integer, not {id_type.simpleString()}"
        )
    if not isinstance(ts_type, T.TimestampType | T.TimestampNTZType):
        raise TypeError(
            f"event-time column {ts_col!r} must be a timestamp, not {ts_type.simpleString()}"
            " (convert it with pyspark.sql.functions.to_timestamp)"
        )
    features = [_feature(fields, name, features_col).alias(f"f{i}") for i, name in enumerate(names)]
    ts = F.col(_quoted(ts_col))
    return df.where(rid.isNotNull() & ts.isNotNull()).select(
        rid.alias("id"), ts.alias("ts"), *features
    )


def _feature(fields: dict[str, T.DataType], name: str, features_col: str | None) -> Column:
    if features_col is None:
        if name not in fields:
            raise ValueError(f"the prediction log has no feature column {name!r}")
        return F.col(_quoted(name))
    container = fields[features_col]
    if isinstance(container, T.StructType):
        if name not in container.fieldNames():
            raise ValueError(f"the struct column {features_col!r} has no field {name!r}")
        return F.col(_quoted(features_col)).getField(name)
    if isinstance(container, T.MapType):
        return F.col(_quoted(features_col)).getItem(name)
    raise TypeError(
        f"features column {features_col!r} must be a struct or a map,"
        f" not {container.simpleString()}"
    )


def _quoted(name: str) -> str:
    """A column name as Spark reads it literally (dots and backticks included)."""
    return "`" + name.replace("`", "``") + "`"


def _slim(profile: ReferenceProfile) -> ReferenceProfile:
    """The profile without the reference values, null distributions and row sample,
    which ``partial`` does not use: every task receives a copy, and the sorted values can
    be megabytes a column. The states are finalized with the whole stored profile
    (``monitor.drift.stored.load_profile``), calibration included."""
    columns = {
        name: dataclasses.replace(column, values=np.empty(0))
        for name, column in profile.columns.items()
    }
    return dataclasses.replace(profile, columns=columns, nulls={}, sample={})


def _micros(ts: pa.Array) -> np.ndarray:
    """Microseconds since the epoch (UTC) of a timestamp array without nulls."""
    unit = ts.type.unit
    raw = ts.view(pa.int64()).to_numpy()
    if unit == "ns":
        return raw // 1_000
    return raw * _MICROS[unit]


def _values(column: pa.Array, numeric: bool) -> np.ndarray:
    """A column as ``partial`` reads it: float64 with NaN for missing numbers, else objects
    with None for missing (numbers in a text-typed column stay text, counted as type
    errors by ``partial``, as values of the wrong type are)."""
    kind = column.type
    if numeric and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    if numeric and pa.types.is_decimal(kind):
        return np.array([np.nan if v is None else float(v) for v in column.to_pylist()])
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    return np.array(column.to_pylist(), dtype=object)


def _decode(row: Row) -> tuple[int, WindowState]:
    return row[0], WindowState.from_dict(orjson.loads(row[1]))
