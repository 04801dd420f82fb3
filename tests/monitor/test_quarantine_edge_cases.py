"""Records and files that must not stop ingestion: files that disappear while it runs,
timestamps at the end of time, lone surrogates, deep nesting, NUL characters, CSV rows with
bare carriage returns, non-finite values in flat rows, records without features. Each is
quarantined (or skipped) with its reason and every good record around it is stored."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_corpus import (
    Corpus,
    assert_stored_exactly,
    config,
    good,
    prediction,
    quarantine_rows,
    stored_predictions,
)
from quarantine_records import CSV_HEADER, TS, csv_row, parquet_table, record

import monitor.ingest
from driftd.app import App
from driftd.config import parse
from storage.store import Store

# -- files that disappear -----------------------------------------------------------------


def small_app(tmp: Path, store: Store, **ingest: Any) -> App:
    cfg = parse(config(tmp, [str(tmp / "logs" / "*.jsonl")], **ingest), base=tmp)
    return App(cfg, store=store).open()


def write_files(tmp: Path, sizes: dict[str, int]) -> Corpus:
    rng = random.Random(len(sizes))
    corpus = Corpus()
    (tmp / "logs").mkdir()
    for name, size in sizes.items():
        rows = [good(prediction(rng, n, rid=f"{name}-{n}")) for n in range(size)]
        corpus.write(tmp / "logs" / name, rows)
    return corpus


def drop_file(corpus: Corpus, path: Path) -> None:
    corpus.rows = {k: v for k, v in corpus.rows.items() if not k.startswith(path.name)}


def test_file_deleted_between_discovery_and_reading(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_files(tmp_path, {"a.jsonl": 30, "b.jsonl": 30, "c.jsonl": 30})
    doomed = tmp_path / "logs" / "b.jsonl"
    discover = monitor.ingest.discover

    def discover_then_delete(patterns: Any) -> Any:
        found = discover(patterns)
        assert str(doomed) in [f.path for f in found]
        doomed.unlink()
        return found

    monkeypatch.setattr(monitor.ingest, "discover", discover_then_delete)
    report = small_app(tmp_path, store).ingest().to_dict()["sources"]["predictions"]

    assert (report["files"], report["rows"], report["quarantined"]) == (2, 60, {})
    drop_file(corpus, doomed)
    assert_stored_exactly(store, corpus)


def test_file_deleted_while_being_read(tmp_path: Path, store: Store) -> None:
    """Like a log shipper, ingestion finishes a file it has open even once it is unlinked."""
    corpus = write_files(tmp_path, {"a.jsonl": 120, "b.jsonl": 30})
    doomed = tmp_path / "logs" / "a.jsonl"  # the oldest file: read first
    deleted = []

    def delete_after_first_chunk(source: str, advanced: int) -> None:
        if not deleted:
            doomed.unlink()
            deleted.append(source)

    app = small_app(tmp_path, store, chunk_rows=25)
    report = app.ingest(delete_after_first_chunk).to_dict()["sources"]["predictions"]

    assert deleted and not doomed.exists()
    assert (report["files"], report["rows"], report["quarantined"]) == (2, 150, {})
    assert_stored_exactly(store, corpus)
    again = app.ingest().to_dict()["sources"]["predictions"]
    assert (again["files"], again["rows"]) == (0, 0)


# -- records that must not stop ingestion ------------------------------------------------


def lines(*data: bytes) -> bytes:
    return b"".join(d + b"\n" for d in data)


def ingest_one(
    tmp: Path, store: Store, name: str, data: bytes, fmt: str = "jsonl"
) -> tuple[set[str], list[tuple[int, str]]]:
    """Stored ids and (line, reason) of quarantined records after ingesting one file."""
    logs = tmp / "logs"
    logs.mkdir()
    (logs / name).write_bytes(data)
    cfg = parse(config(tmp, [str(logs / name)], fmt=fmt), base=tmp)
    App(cfg, store=store).open().ingest()
    ids = {r["id"] for r in stored_predictions(store)}
    return ids, sorted((line, reason) for _, line, reason in quarantine_rows(store))


def between_good_lines(line: bytes) -> bytes:
    return lines(json.dumps(record("before")).encode(), line, json.dumps(record("after")).encode())


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Any:
    s = Store(sqlite_url)
    s.migrate()
    yield s
    s.dispose()


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param(
            "0001-01-01T00:00:00+01:00",
            id="before-year-1-in-utc",
        ),
        pytest.param(
            "9999-12-31T23:30:00Z",
            id="last-window-of-year-9999",
        ),
    ],
)
def test_timestamp_at_the_end_of_time_does_not_stop_ingestion(
    tmp_path: Path, sqlite_store: Store, ts: str
) -> None:
    ids, quarantined = ingest_one(
        tmp_path,
        sqlite_store,
        "p.jsonl",
        between_good_lines(json.dumps(record("x", ts=ts)).encode()),
    )
    # stored, or quarantined as a bad timestamp: either way accounted for, once
    assert ids - {"x"} == {"before", "after"}
    assert quarantined == ([] if "x" in ids else [(2, "bad_ts")])


@pytest.mark.parametrize("where", ["id", "feature", "variant"])
def test_lone_surrogate_escape_is_quarantined(tmp_path: Path, store: Store, where: str) -> None:
    """orjson refuses "\\ud800" (no UTF-8 text can hold it); so must ingestion."""
    line = {
        "id": rb'{"id":"x\ud800","ts":"2026-11-28T10:00:00Z","features":{},"prediction":1}',
        "feature": rb'{"id":"x","ts":"2026-11-28T10:00:00Z","features":{"country":"\udc00"},"prediction":1}',
        "variant": rb'{"id":"x","ts":"2026-11-28T10:00:00Z","features":{},"prediction":1,"variant":"\ud83d"}',
    }[where]
    ids, quarantined = ingest_one(tmp_path, store, "p.jsonl", between_good_lines(line))
    assert ids == {"before", "after"}
    assert len(quarantined) == 1 and quarantined[0][0] == 2


@pytest.mark.parametrize("where", ["prediction", "feature"])
def test_deeply_nested_value_is_quarantined(
    tmp_path: Path, sqlite_store: Store, where: str
) -> None:
    deep = b"[" * 1000 + b"1" + b"]" * 1000
    line = (
        b'{"id":"x","ts":"2026-11-28T10:00:00Z","features":{"amount":1},"prediction":%s}' % deep
        if where == "prediction"
        else b'{"id":"x","ts":"2026-11-28T10:00:00Z","features":{"amount":%s},"prediction":1}'
        % deep
    )
    ids, quarantined = ingest_one(tmp_path, sqlite_store, "p.jsonl", between_good_lines(line))
    assert ids == {"before", "after"}
    assert len(quarantined) == 1 and quarantined[0][0] == 2


@pytest.mark.postgres
@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b'{"id":"x\x00","ts":"2026-11-28T10:00:00Z"}', id="raw-nul-byte-in-bad-line"),
        pytest.param(
            rb'{"id":"x\u0000","ts":"2026-11-28T10:00:00Z","features":{},"prediction":1}',
            id="nul-escape-in-id",
        ),
    ],
)
def test_nul_character_does_not_stop_ingestion_on_postgresql(
    tmp_path: Path, pg_url: str, line: bytes
) -> None:
    store = Store(pg_url)
    store.migrate()
    try:
        ids, quarantined = ingest_one(tmp_path, store, "p.jsonl", between_good_lines(line))
    finally:
        store.dispose()
    assert ids == {"before", "after"}
    assert len(quarantined) == 1 and quarantined[0][0] == 2


# -- CSV and Parquet values (bugs) ----------------------------------------------------------


def csv_file(*rows: str) -> bytes:
    return lines(CSV_HEADER, *(r.encode() for r in rows))


def test_csv_row_with_a_bare_carriage_return_does_not_stop_ingestion(
    tmp_path: Path, sqlite_store: Store
) -> None:
    data = csv_file(
        csv_row("c-1"),
        csv_row("c-2", country="D\rE"),
        csv_row("c-3", amount=2, is_new="true"),
    )
    ids, quarantined = ingest_one(tmp_path, sqlite_store, "p.csv", data, fmt="csv")
    assert ids - {"c-2"} == {"c-1", "c-3"}
    assert quarantined == ([] if "c-2" in ids else [(3, "bad_csv_row")])


def test_csv_ids_are_kept_as_written(tmp_path: Path, sqlite_store: Store) -> None:
    data = csv_file(*(csv_row(rid) for rid in ("007", "7", "1e3", "42")))
    ids, quarantined = ingest_one(tmp_path, sqlite_store, "p.csv", data, fmt="csv")
    assert (ids, quarantined) == ({"007", "7", "1e3", "42"}, [])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_non_finite_feature_in_flat_rows_is_quarantined(
    tmp_path: Path, sqlite_store: Store, fmt: str
) -> None:
    amounts = {
        "f-1": 1.5,
        "f-inf": float("inf"),
        "f-nan": float("nan"),
        "f-ninf": -float("inf"),
        "f-2": 2.0,
    }
    if fmt == "csv":
        data = csv_file(*(csv_row(rid, amount=a) for rid, a in amounts.items()))
    else:
        rows = [dict(flat_row(rid), amount=a) for rid, a in amounts.items()]
        sink = pa.BufferOutputStream()
        pq.write_table(parquet_table(rows, pa.float64()), sink)
        data = sink.getvalue().to_pybytes()
    ids, quarantined = ingest_one(tmp_path, sqlite_store, f"p.{fmt}", data, fmt=fmt)
    assert ids == {"f-1", "f-2"}
    first = 3 if fmt == "csv" else 2  # CSV lines count the header; Parquet counts rows
    assert quarantined == [(first + i, "non_finite") for i in range(3)]


def flat_row(rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "ts": TS,
        "amount": 1.0,
        "country": "DE",
        "is_new": False,
        "prediction": 1,
        "score": 0.5,
    }


@pytest.mark.parametrize("features", ["absent", "null"])
def test_record_without_features_is_quarantined(
    tmp_path: Path, sqlite_store: Store, features: str
) -> None:
    rec = record("x", features=None if features == "null" else ...)
    ids, quarantined = ingest_one(
        tmp_path, sqlite_store, "p.jsonl", between_good_lines(json.dumps(rec).encode())
    )
    assert ids == {"before", "after"}
    assert quarantined == [(2, "missing_features")]
