"""The prediction log: rotated by hour and by size into new files a glob finds, never
appended to after a restart, every record once."""

from __future__ import annotations

import fnmatch
from datetime import timedelta
from pathlib import Path

import orjson

from driftd.serve.log import PredictionLog, rfc3339
from tests.serve.conftest import Clock, logged


def record(i: int) -> dict[str, object]:
    return {"id": f"r{i}", "ts": "2026-12-05T03:00:00.000Z", "features": {"x": i}}


def test_a_new_utc_hour_starts_a_new_file(tmp_path: Path, clock: Clock) -> None:
    with PredictionLog(tmp_path / "predictions.jsonl", clock=clock, fsync=False) as log:
        log.write(record(0))
        first = log.current
        clock.advance(timedelta(minutes=59))
        log.write(record(1))
        assert log.current == first
        clock.advance(timedelta(minutes=1))
        log.write(record(2))
        assert log.current != first

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "predictions-20261205T030000Z-0000.jsonl",
        "predictions-20261205T040000Z-0000.jsonl",
    ]
    assert [r["id"] for r in logged(log)] == ["r0", "r1", "r2"]


def test_a_file_never_grows_past_max_bytes(tmp_path: Path, clock: Clock) -> None:
    log = PredictionLog(tmp_path / "p.jsonl", clock=clock, max_bytes=4096, hourly=False)
    for i in range(300):
        log.write(record(i))
    log.close()

    files = list(tmp_path.iterdir())
    assert len(files) > 3
    assert all(f.stat().st_size <= 4096 for f in files)
    assert all(fnmatch.fnmatch(str(f), log.glob) for f in files)
    assert sorted(r["id"] for r in logged(log)) == sorted(f"r{i}" for i in range(300))


def test_a_batch_is_split_across_files_at_max_bytes(tmp_path: Path, clock: Clock) -> None:
    log = PredictionLog(tmp_path / "p.jsonl", clock=clock, max_bytes=4096, hourly=False)
    log.write_many([record(i) for i in range(100)])
    log.write_many([record(i) for i in range(100, 250)])
    log.close()

    assert len(list(tmp_path.iterdir())) > 3
    assert all(f.stat().st_size <= 4096 for f in tmp_path.iterdir())
    assert [r["id"] for r in logged(log)] == [f"r{i}" for i in range(250)]
    assert log.written == 250


def test_a_restart_writes_a_new_file_after_a_torn_line(tmp_path: Path, clock: Clock) -> None:
    log = PredictionLog(tmp_path / "p.jsonl", clock=clock)
    log.write(record(0))
    assert log.current is not None
    with open(log.current, "ab") as torn:  # a crash in the middle of a write
        torn.write(b'{"id": "r1", "ts": "2026-12')
    restarted = PredictionLog(tmp_path / "p.jsonl", clock=clock)
    restarted.write(record(2))

    assert restarted.current != log.current
    assert restarted.current.read_bytes() == orjson.dumps(record(2)) + b"\n"  # type: ignore[union-attr]
    log.close()
    restarted.close()


def test_timestamps_are_rfc3339_utc_with_milliseconds(clock: Clock) -> None:
    clock.advance(timedelta(microseconds=123_999))
    assert rfc3339(clock()) == "2026-12-05T03:00:00.123Z"
