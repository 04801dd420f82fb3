"""Exactly-once ingestion across crashes: ``driftd ingest`` SIGKILLed again and again.

Whatever the moment of each kill, once a run completes the store must hold every good
input row exactly once, every malformed line quarantined exactly once, and checkpoint
and window counts that agree with the rows. The kills come from outside at seeded
random moments spread over the run (as an operator's ``kill -9`` or the OOM killer
would), and from inside at seeded random database statements, which puts them inside
transactions without depending on timing. Timing only decides where kills land, never
whether the assertions hold.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from crash_hook import forked
from ingest_corpus import (
    Corpus,
    Entry,
    assert_stored_exactly,
    bad,
    checkpoint_rows,
    config,
    expected_row,
    good,
    lines_read,
    prediction,
    stored_predictions,
    window_counts,
)

from driftd.app import App
from driftd.config import load
from monitor.windows import TimeWindows
from storage.store import Store

CLI = [sys.executable, "-c", "from driftd.cli import main; main()"]
HOOK = [sys.executable, str(Path(__file__).with_name("crash_hook.py"))]
FILES = 4
LINES_PER_FILE = 7_500  # 30k lines, 60 chunks of 500 plus the files' last chunks
CHUNK_ROWS = 500
WINDOW_ROWS = 700  # row-count windows straddle chunks and files


def malformed(rng: random.Random, n: int) -> Entry:
    record = prediction(rng, n, rid=f"bad-{n}")
    kind = rng.randrange(5)
    if kind == 0:
        return bad(json.dumps(record)[:-7], "bad_json")
    if kind == 1:
        del record["id"]
        return bad(record, "missing_id")
    if kind == 2:
        record["ts"] = "28/11/2026 10:00"
        return bad(record, "bad_ts")
    if kind == 3:
        return bad(
            json.dumps(record).replace(f'"score": {record["score"]}', '"score": NaN'), "non_finite"
        )
    record["features"]["amount"] = "129.50 EUR"
    return bad(record, "bad_feature_type")


def write_corpus(logs: Path, seed: int) -> Corpus:
    """30k lines over 4 files: ~1.5% malformed, ~2% repeated ids (some back to back)."""
    rng = random.Random(seed)
    corpus = Corpus()
    logs.mkdir()
    issued: list[str] = []
    n = 0
    for f in range(FILES):
        entries = []
        while len(entries) < LINES_PER_FILE:
            roll = rng.random()
            n += 1
            if roll < 0.015:
                entries.append(malformed(rng, n))
            elif roll < 0.025 and issued:
                # the same id again with other content: the first one seen must win
                entries.append(good(prediction(rng, n, rid=rng.choice(issued))))
            elif roll < 0.035 and issued:
                entries.append(good(prediction(rng, n, rid=issued[-1])))  # same chunk
            else:
                record = prediction(rng, n)
                issued.append(record["id"])
                entries.append(good(record))
        corpus.write(logs / f"predictions-{f}.jsonl", entries)
    return corpus


@pytest.fixture
def setup(tmp_path: Path, db_url: str) -> Iterator[tuple[Path, Corpus, Store]]:
    corpus = write_corpus(tmp_path / "logs", seed=20261128)
    cfg = config(
        tmp_path,
        [str(tmp_path / "logs" / "predictions-*.jsonl")],
        url=db_url,
        chunk_rows=CHUNK_ROWS,
    )
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # migrate up front: a kill during the very first migration is its own test below
    with App(load(path)):
        pass
    store = Store(db_url)
    yield path, corpus, store
    store.dispose()


def ingest(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ingest", "-c", str(cfg), "--json", "--log-level", "WARNING"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def ingest_killed_at(cfg: Path, at: int) -> tuple[int | None, str]:
    """``driftd ingest``, killed just before its ``at``-th statement or commit (a process
    forked with driftd imported: see crash_hook); its exit code and stderr."""
    output = cfg.parent / "killed"
    proc = forked(at, "", ["ingest", "-c", str(cfg), "--json", "--log-level", "WARNING"], output)
    proc.join(timeout=120)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return proc.exitcode, Path(f"{output}.err").read_text()


def assert_exactly_once(store: Store, corpus: Corpus) -> None:
    assert_stored_exactly(store, corpus)
    stored = len(corpus.rows)
    cps = checkpoint_rows(store)
    assert sum(c["rows"] for c in cps) == stored
    assert sum(c["duplicates"] for c in cps) == corpus.duplicates
    assert sum(c["quarantined"] for c in cps) == len(corpus.quarantined)
    assert {c["path"]: c["line"] for c in cps} == corpus.files
    assert {c["path"]: c["position"] for c in cps} == {
        p: Path(p).stat().st_size for p in corpus.files
    }
    hours = TimeWindows(timedelta(hours=1))  # the default window size
    expected = Counter(hours.start_of(expected_row(r)["ts"]) for r in corpus.rows.values())
    assert sum(window_counts(store).values()) == stored
    assert window_counts(store) == expected


def finish(cfg: Path, store: Store, corpus: Corpus) -> None:
    """Run to completion, check the store, then check one more run changes nothing."""
    done = ingest(cfg)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(store, corpus)
    again = ingest(cfg)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rows"] == 0
    assert_exactly_once(store, corpus)


@pytest.mark.slow
def test_sigkill_at_random_moments(setup: tuple[Path, Corpus, Store]) -> None:
    cfg, corpus, store = setup
    rng = random.Random(7)
    total = sum(corpus.files.values())
    # kill points spread over the run: wait until ingestion has got past a random share
    # of the lines (sorted, so each restart has something left), then a little longer;
    # a kill may land before the work starts or after it ends, which must be harmless too
    for target in sorted(rng.uniform(0, 1.05) * total for _ in range(18)):
        # `driftd ingest` in a process forked with driftd imported (see crash_hook)
        args = ["ingest", "-c", str(cfg), "--json", "--log-level", "WARNING"]
        proc = forked(0, "", args, cfg.parent / "killed")
        deadline = time.monotonic() + 30
        while proc.is_alive() and time.monotonic() < deadline:
            if lines_read(store) >= target:
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
        proc.kill()
        proc.join()
    finish(cfg, store, corpus)


@pytest.mark.slow
def test_sigkill_inside_transactions(setup: tuple[Path, Corpus, Store]) -> None:
    cfg, corpus, store = setup
    rng = random.Random(11)
    total = sum(corpus.files.values())
    interrupted = 0
    for _ in range(12):
        # a chunk takes about six statements and commits: kills land anywhere from start-up
        # to a restart's first few chunks, mostly inside a chunk's transaction
        at = rng.randint(1, 40)
        code, stderr = ingest_killed_at(cfg, at)
        assert code in (0, -9), stderr
        interrupted += code == -9 and lines_read(store) < total
    assert interrupted >= 6, "the kills must interrupt ingestion for this test to mean much"
    finish(cfg, store, corpus)


@pytest.fixture
def row_setup(tmp_path: Path, db_url: str) -> Iterator[tuple[Path, Corpus, Store]]:
    corpus = write_corpus(tmp_path / "logs", seed=20261129)
    cfg = config(
        tmp_path,
        [str(tmp_path / "logs" / "predictions-*.jsonl")],
        url=db_url,
        chunk_rows=CHUNK_ROWS,
    )
    cfg["windows"] = {"rows": WINDOW_ROWS}
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with App(load(path)):
        pass
    store = Store(db_url)
    yield path, corpus, store
    store.dispose()


def expected_row_windows(corpus: Corpus) -> dict[str, datetime]:
    """Window start per id: the good rows in arrival order, WINDOW_ROWS at a time."""
    starts: dict[str, datetime] = {}
    start: datetime | None = None
    for i, (rid, record) in enumerate(corpus.rows.items()):
        ts = expected_row(record)["ts"]
        if i % WINDOW_ROWS == 0:
            start = ts if start is None or ts > start else start + timedelta(microseconds=1)
        assert start is not None
        starts[rid] = start
    return starts


def assert_row_windows(store: Store, corpus: Corpus) -> None:
    assert_stored_exactly(store, corpus)
    expected = expected_row_windows(corpus)
    assert {r["id"]: r["window_start"] for r in stored_predictions(store)} == expected
    counts = Counter(expected.values())
    assert window_counts(store) == counts
    sizes = [n for _, n in sorted(counts.items())]
    assert sizes[:-1] == [WINDOW_ROWS] * (len(sizes) - 1) and 0 < sizes[-1] <= WINDOW_ROWS


@pytest.mark.slow
def test_sigkill_inside_transactions_keeps_row_windows_exact(
    row_setup: tuple[Path, Corpus, Store],
) -> None:
    """Killed inside chunk transactions, restarted: every id lands in the window an
    uninterrupted run puts it in, and each window holds WINDOW_ROWS rows but the last."""
    cfg, corpus, store = row_setup
    rng = random.Random(13)
    total = sum(corpus.files.values())
    interrupted = 0
    for _ in range(10):
        at = rng.randint(1, 40)
        code, stderr = ingest_killed_at(cfg, at)
        assert code in (0, -9), stderr
        interrupted += code == -9 and lines_read(store) < total
    assert interrupted >= 5, "the kills must interrupt ingestion for this test to mean much"
    done = ingest(cfg)
    assert done.returncode == 0, done.stderr
    assert_row_windows(store, corpus)
    again = ingest(cfg)
    assert again.returncode == 0 and json.loads(again.stdout)["rows"] == 0, again.stderr
    assert_row_windows(store, corpus)


@pytest.mark.parametrize(
    "db",
    [
        pytest.param(
            "sqlite",
        ),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
def test_sigkill_during_first_migration(
    tmp_path: Path, db: str, request: pytest.FixtureRequest
) -> None:
    url = None if db == "sqlite" else request.getfixturevalue("pg_url")
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(3)
    corpus = Corpus()
    corpus.write(logs / "predictions.jsonl", [good(prediction(rng, n)) for n in range(50)])
    cfg = tmp_path / "driftd.yaml"
    cfg.write_text(yaml.safe_dump(config(tmp_path, [str(logs / "*.jsonl")], url=url)))
    # the third CREATE TABLE of a fresh database: two tables exist, the rest do not
    killed = subprocess.run(
        [*HOOK, "3", "CREATE TABLE", "ingest", "-c", str(cfg), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    done = ingest(cfg)
    assert done.returncode == 0, done.stderr
    store = Store(url or f"sqlite:///{tmp_path / 'workspace' / 'driftd.db'}")
    try:
        assert_stored_exactly(store, corpus)
    finally:
        store.dispose()
