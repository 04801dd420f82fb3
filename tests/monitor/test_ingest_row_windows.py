"""Ingestion into row-count windows through :class:`monitor.ingest.Ingestor`: every
format, runs that stop anywhere, and timestamps at the edge of time."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_corpus import MODEL, SCHEMA, Corpus, good, prediction, stored_predictions
from sqlalchemy import select

from monitor.ingest import Ingestor, Source
from monitor.records import FeatureType, RecordSpec
from monitor.windows import RowWindows
from storage import schema
from storage.ingest import IngestRepository
from storage.store import Store

SPEC = RecordSpec(schema={k: FeatureType(v) for k, v in SCHEMA.items()})
N = 10


def ingestor(
    store: Store, paths: list[Path], fmt: str = "jsonl", chunk_rows: int = 7, model: str = MODEL
) -> Ingestor:
    return Ingestor(
        repository=IngestRepository(store),
        model=model,
        sources=[Source("p", "predictions", tuple(map(str, paths)), fmt, SPEC)],  # type: ignore[arg-type]
        windows=RowWindows(N),
        chunk_rows=chunk_rows,
    )


def window_sizes(store: Store, model: str = MODEL) -> list[int]:
    w = schema.windows
    with store.connect() as conn:
        rows = conn.execute(select(w.c.predictions).where(w.c.model == model).order_by(w.c.start))
        return list(rows.scalars())


def arrival(store: Store, model: str = MODEL) -> list[tuple[str, Any]]:
    rows = sorted(stored_predictions(store, model), key=lambda r: r["pk"])
    return [(r["id"], r["window_start"]) for r in rows]


def corpus_lines(tmp: Path, n: int, seed: int = 1) -> tuple[Path, Corpus]:
    rng = random.Random(seed)
    records = [prediction(rng, i) for i in range(n)]
    records[30:30] = records[3:6]  # re-sent: duplicates
    corpus = Corpus()
    path = tmp / "p.jsonl"
    corpus.write(path, [good(r) for r in records])
    return path, corpus


def test_a_run_stopped_after_any_chunk_gives_the_windows_of_one_run(
    tmp_path: Path, store: Store
) -> None:
    path, corpus = corpus_lines(tmp_path, 57)
    ingestor(store, [path], chunk_rows=57 + 3).run()  # one chunk: the reference
    reference = arrival(store)
    assert window_sizes(store) == [10, 10, 10, 10, 10, 7]

    for stop in range(1, 9):  # a fresh model each time, stopped after `stop` chunks
        model = f"stopped-{stop}"
        first = ingestor(store, [path], model=model)
        chunks = first._chunks
        taken = 0

        def limited(*args: Any, _chunks: Any = chunks, _stop: int = stop, **kw: Any) -> Any:
            nonlocal taken
            for chunk in _chunks(*args, **kw):
                if taken == _stop:
                    return  # the run ends here, as a crash after a commit would end it
                taken += 1
                yield chunk

        first._chunks = limited  # type: ignore[method-assign]
        first.run()
        assert len(arrival(store, model)) < len(reference)
        ingestor(store, [path], model=model).run()  # the restart
        assert arrival(store, model) == reference
        assert window_sizes(store, model) == [10, 10, 10, 10, 10, 7]
    assert len(reference) == len(corpus.rows)


def test_csv_and_parquet_rows_get_row_windows(tmp_path: Path, store: Store) -> None:
    rng = random.Random(2)
    records = [prediction(rng, i) for i in range(25)]
    flat = [{k: v for k, v in r.items() if k != "features"} | r["features"] for r in records[:12]]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(flat[0]))
    writer.writeheader()
    writer.writerows(flat)
    (tmp_path / "p.csv").write_text(text.getvalue())
    table = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k != "features"} | r["features"] for r in records[12:]]
    )
    pq.write_table(table, tmp_path / "p.parquet")

    ingestor(store, [tmp_path / "p.csv"], "csv").run()
    ingestor(store, [tmp_path / "p.parquet"], "parquet").run()

    assert window_sizes(store) == [10, 10, 5]
    assert [rid for rid, _ in arrival(store)] == [r["id"] for r in records]


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59.999999Z", "9999-01-01T00:00:00Z"])
def test_a_timestamp_in_the_last_year_of_time_is_quarantined(
    tmp_path: Path, store: Store, ts: str
) -> None:
    """A window start may have to move 1 µs past the previous one: that must fit."""
    rng = random.Random(3)
    records = [prediction(rng, i) for i in range(3)]
    records[1]["ts"] = ts
    corpus = Corpus()
    corpus.write(tmp_path / "p.jsonl", [good(r) for r in records])

    report = ingestor(store, [tmp_path / "p.jsonl"]).run()

    assert (report.rows, dict(report.sources["p"].quarantined)) == (2, {"bad_ts": 1})
    assert window_sizes(store) == [2]
