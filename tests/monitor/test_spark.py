"""The Spark backend gives the local backend's window states, bit for bit.

One seeded prediction log is written as several Parquet files of several row groups. The
local side folds its rows with :func:`~monitor.drift.state.partial` the way the statistics
job does (Python values, None for missing): each window in one batch, and again in random
chunks merged in a shuffled order. The Spark side reads the Parquet files in PySpark local
mode, repartitioned at random into 7 partitions, and again in the partitions of the files'
row groups: either way every window is split across partitions. All give the same
windows, the same serialized states and the same drift results.

States are compared as the bytes of ``orjson.dumps(state.to_dict())``: every count,
exact sum, range and sample value, and the order of every key.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip(
    "pyspark", reason="the Spark backend needs pyspark: pip install 'driftd[spark]'"
)

from pyspark.sql import SparkSession  # noqa: E402

from monitor.drift.compare import window_drift  # noqa: E402
from monitor.drift.profile import ReferenceProfile, fit_profile  # noqa: E402
from monitor.drift.state import WindowState, merge, partial, row_keys  # noqa: E402
from monitor.records import FeatureType  # noqa: E402
from monitor.spark import batch_states, read_parquet_states, window_states  # noqa: E402
from monitor.windows import EPOCH, TimeWindows  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "age": FeatureType.NUMERIC,
    "ratio": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
    "zone": FeatureType.CATEGORICAL,
    "is_new": FeatureType.BOOLEAN,
}
NUMERIC = [name for name, kind in SCHEMA.items() if kind is FeatureType.NUMERIC]
WINDOWS = TimeWindows(timedelta(hours=1))
START = datetime(2026, 11, 28, 9, 17, 3, 250_000, tzinfo=UTC)
ROWS = 30_000
SAMPLE_SIZE = 1000  # windows hold ~5,000 rows: which rows are sampled matters


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local Spark for the whole run: starting it takes ~20 s."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("PySpark needs Java: no java on PATH and JAVA_HOME is not set")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYSPARK_PYTHON", sys.executable)
        env.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("driftd-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.default.parallelism", "4")
            .config("spark.sql.files.maxPartitionBytes", str(64 * 1024))  # a split a row group
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.local.dir", str(tmp_path_factory.mktemp("spark-local")))
            # short jobs: the quick JIT alone saves a third of the run time
            .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


def reference_profile() -> ReferenceProfile:
    rng = np.random.default_rng(7)
    n = 5000
    columns = {
        "amount": rng.lognormal(4.0, 1.0, n),
        "age": rng.integers(18, 80, n).astype(np.float64),
        "ratio": rng.normal(0.0, 1.0, n),
        "country": np.array(rng.choice(["DE", "FR", "IT", "US"], n), dtype=object),
        "zone": np.array(rng.integers(1, 6, n).tolist(), dtype=object),
        "is_new": np.array(rng.random(n) < 0.3, dtype=object),
    }
    return fit_profile(columns, SCHEMA, model_version="3", bins=50)


PROFILE = reference_profile()


def _with_missing(rng: np.random.Generator, values: list[Any], share: float) -> list[Any]:
    return [None if rng.random() < share else v for v in values]


def prediction_log() -> pa.Table:
    """A shuffled log over ~6 hourly windows, with missing values, NaN, a new category and
    a new zone, rows without id or event time and rows with an infinite amount."""
    rng = np.random.default_rng(11)
    offsets = rng.integers(0, 6 * 3600 * 10**6, ROWS)
    first_edge = START.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    edge = (first_edge - START) // timedelta(microseconds=1)
    offsets[:50] = edge + 3600 * 10**6 * rng.integers(0, 5, 50) - rng.integers(0, 2, 50)
    ts: list[datetime | None] = [START + timedelta(microseconds=int(o)) for o in offsets]
    ratio = rng.normal(0.2, 1.1, ROWS).astype(np.float32).tolist()
    for i in rng.choice(ROWS, 300, replace=False).tolist():
        ratio[i] = math.nan
    amount = _with_missing(rng, rng.lognormal(4.1, 1.0, ROWS).tolist(), 0.02)
    amount[100:106] = [math.inf, -math.inf] * 3
    ts[200:205] = [None] * 5
    ids: list[str | None] = [f"req-{i:06d}" for i in range(ROWS)]
    ids[300:303] = [None] * 3
    country = rng.choice(["DE", "FR", "IT", "US", "BR"], ROWS, p=[0.3, 0.2, 0.2, 0.2, 0.1])
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, pa.float64()),
            "age": pa.array(_with_missing(rng, rng.integers(18, 90, ROWS).tolist(), 0.05)),
            "ratio": pa.array(_with_missing(rng, ratio, 0.01), pa.float32()),
            "country": pa.array(_with_missing(rng, country.tolist(), 0.03), pa.string()),
            "zone": pa.array(_with_missing(rng, rng.integers(1, 7, ROWS).tolist(), 0.02)),
            "is_new": pa.array(_with_missing(rng, (rng.random(ROWS) < 0.4).tolist(), 0.04)),
        }
    )
    return table.take(rng.permutation(ROWS))


def valid_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows local ingestion accepts: with id and event time, no infinite number."""
    return [
        row
        for row in table.to_pylist()
        if row["id"] is not None
        and row["ts"] is not None
        and not any(isinstance(row[n], float) and math.isinf(row[n]) for n in NUMERIC)
    ]


def local_state(rows: list[dict[str, Any]], sample_size: int = SAMPLE_SIZE) -> WindowState:
    columns = {name: [row[name] for row in rows] for name in SCHEMA}
    return partial(columns, row_keys([r["id"] for r in rows]), PROFILE, sample_size=sample_size)


def by_window(rows: list[dict[str, Any]]) -> dict[datetime, list[dict[str, Any]]]:
    out: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[WINDOWS.start_of(row["ts"])].append(row)
    return out


def local_states(rows: list[dict[str, Any]]) -> dict[datetime, WindowState]:
    return {start: local_state(part) for start, part in by_window(rows).items()}


def chunked_states(rows: list[dict[str, Any]], seed: int) -> dict[datetime, WindowState]:
    """Partial states of random chunks, merged per window in a shuffled order."""
    rnd = random.Random(seed)
    rows = rows[:]
    rnd.shuffle(rows)
    pieces: dict[datetime, list[WindowState]] = defaultdict(list)
    i = 0
    while i < len(rows):
        size = rnd.randint(1, 3000)
        for start, part in by_window(rows[i : i + size]).items():
            pieces[start].append(local_state(part))
        i += size
    out = {}
    for start, states in pieces.items():
        rnd.shuffle(states)
        merged = states[0]
        for state in states[1:]:
            merged = merge(merged, state) if rnd.random() < 0.5 else merge(state, merged)
        out[start] = merged
    return out


def canonical(state: WindowState) -> bytes:
    return orjson.dumps(state.to_dict())


def drift_bytes(state: WindowState) -> bytes:
    return orjson.dumps(window_drift(state, PROFILE).to_dict())


def assert_same(got: dict[datetime, WindowState], expected: dict[datetime, WindowState]) -> None:
    assert sorted(got) == sorted(expected)
    for start, state in expected.items():
        assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
        assert canonical(got[start]) == canonical(state), start
        assert drift_bytes(got[start]) == drift_bytes(state), start


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pa.Table]:
    """The log as 4 Parquet files of row groups of 2,500 rows, with the features in flat
    columns and, in another directory, in one struct column ``features``."""
    table = prediction_log()
    flat = tmp_path_factory.mktemp("flat")
    nested = tmp_path_factory.mktemp("nested")
    features = pa.StructArray.from_arrays(
        [table.column(name).combine_chunks() for name in SCHEMA], names=list(SCHEMA)
    )
    struct = pa.table({"id": table.column("id"), "ts": table.column("ts"), "features": features})
    quarter = ROWS // 4
    for i in range(4):
        for path, data in ((flat, table), (nested, struct)):
            part = data.slice(i * quarter, quarter)
            pq.write_table(part, path / f"part-{i}.parquet", row_group_size=2500)
    return flat, nested, table


@pytest.fixture(scope="module")
def expected(log: tuple[Path, Path, pa.Table]) -> dict[datetime, WindowState]:
    rows = valid_rows(log[2])
    single = local_states(rows)
    assert len(single) == 7 and min(s.rows for s in single.values()) > SAMPLE_SIZE
    for seed in (1, 2):
        assert_same(chunked_states(rows, seed), single)
    return single


def test_spark_states_equal_local_states(
    spark: SparkSession, log: tuple[Path, Path, pa.Table], expected: dict[datetime, WindowState]
) -> None:
    df = spark.read.parquet(str(log[0])).repartition(7)
    assert df.rdd.getNumPartitions() == 7
    got = window_states(df, PROFILE, windows=WINDOWS, sample_size=SAMPLE_SIZE)
    assert list(got) == sorted(got)
    assert_same(got, expected)
    assert sum(s.rows for s in got.values()) == ROWS - 5 - 3 - 6  # rows skipped
    assert got[min(got)].columns["country"].unseen  # "BR" was seen
    assert got[min(got)].columns["zone"].unseen  # and zone 6


def test_read_parquet_states_of_struct_features(
    spark: SparkSession, log: tuple[Path, Path, pa.Table]
) -> None:
    """Features in one struct column, the partitions of the files' row groups, the default
    sample size, and a session time zone half an hour off UTC."""
    path = str(log[1])
    assert spark.read.parquet(path).rdd.getNumPartitions() >= 4
    spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")
    try:
        got = read_parquet_states(spark, path, PROFILE, windows=WINDOWS, features_col="features")
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    rows = valid_rows(log[2])
    assert_same(got, {start: local_state(part, 5000) for start, part in by_window(rows).items()})


def test_integer_ids_naive_timestamps_and_a_map_column(spark: SparkSession) -> None:
    """Integer ids are read as their decimal text, timestamps without zone as UTC, and a
    profiled column that is not read counts as missing."""
    rows = [
        (i, datetime(2026, 11, 28, 10 + i % 3, i % 60), {"amount": float(i), "age": 30.0 + i})
        for i in range(-20, 40)
    ]
    df = spark.createDataFrame(rows, "id long, ts timestamp_ntz, f map<string, double>")
    got = window_states(
        df, PROFILE, windows=WINDOWS, features_col="f", feature_cols=["amount", "age"]
    )
    local: dict[datetime, list[tuple[int, datetime, dict[str, float]]]] = defaultdict(list)
    for row in rows:
        local[WINDOWS.start_of(row[1].replace(tzinfo=UTC))].append(row)
    expected = {
        start: partial(
            {name: [r[2][name] for r in part] for name in ("amount", "age")},
            row_keys([str(r[0]) for r in part]),
            PROFILE,
        )
        for start, part in local.items()
    }
    assert_same(got, expected)
    assert all(s.columns["country"].missing == s.rows for s in got.values())


def test_bad_columns_are_named(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("a", "2026-11-28T10:00:00Z", 1.0)], "id string, ts string, amount double"
    )
    with pytest.raises(TypeError, match="'ts' must be a timestamp"):
        window_states(df, PROFILE, windows=WINDOWS)
    with pytest.raises(ValueError, match="no column 'when'"):
        window_states(df, PROFILE, windows=WINDOWS, ts_col="when")
    with pytest.raises(ValueError, match=r"\['price'\] are not in the profile"):
        window_states(df, PROFILE, windows=WINDOWS, feature_cols=["price"])


def test_batch_states_reads_any_timestamp_unit() -> None:
    """The partition function on its own: event times in seconds, milliseconds,
    microseconds or nanoseconds land in their instant's window; an infinite number skips
    its row."""
    late = datetime(2026, 11, 28, 10, 59, 59, 999_999, tzinfo=UTC)
    micros = [(t - EPOCH) // timedelta(microseconds=1) for t in (late, START, START)]
    scaled = {
        "s": [m // 10**6 for m in micros],
        "ms": [m // 1000 for m in micros],
        "us": micros,
        "ns": [m * 1000 + 999 for m in micros],
    }
    expected = {
        (WINDOWS.start_of(t) - EPOCH) // timedelta(seconds=1): partial(
            {"amount": [amount], "country": [country]}, row_keys([rid]), PROFILE, sample_size=10
        )
        for t, rid, amount, country in ((late, "a", 1.5, "DE"), (START, "b", None, "BR"))
    }
    for unit, values in scaled.items():
        batch = pa.record_batch(
            [
                pa.array(["a", "b", "c"]),
                pa.array(values, pa.timestamp(unit, tz="UTC")),
                pa.array([1.5, None, math.inf]),
                pa.array(["DE", "BR", None]),
            ],
            names=["id", "ts", "f0", "f1"],
        )
        got = batch_states(batch, PROFILE, ("amount", "country"), WINDOWS, 10)
        assert sorted(got) == sorted(expected), unit
        for start, state in expected.items():
            assert canonical(got[start]) == canonical(state), unit
        assert batch_states(batch.slice(2), PROFILE, ("amount", "country"), WINDOWS, 10) == {}
        assert batch_states(batch.slice(0, 0), PROFILE, ("amount", "country"), WINDOWS, 10) == {}


def test_importing_monitor_does_not_load_pyspark() -> None:
    script = (
        "import sys, monitor, monitor.drift.state, monitor.drift.compare, monitor.statistics\n"
        "assert 'pyspark' not in sys.modules, 'pyspark was imported'\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stderr
