"""Following log files across runs, the way a log shipper does.

Each test writes and rotates files the way applications and logrotate do, runs ingestion
between the steps, and checks what a user would: the rows each run reports, and that the
store ends up with every record exactly once.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from ingest_corpus import (
    Corpus,
    Entry,
    assert_stored_exactly,
    bad,
    config,
    dumps,
    good,
    prediction,
)
from sqlalchemy import select

from driftd.app import App
from driftd.config import parse
from storage import schema
from storage.store import Store


class Follower:
    """A log directory, an app ingesting ``app.log*`` from it, and what must be stored."""

    def __init__(self, tmp: Path, store: Store, *, chunk_rows: int = 16) -> None:
        self.dir = tmp / "logs"
        self.dir.mkdir()
        self.log = self.dir / "app.log"
        cfg = config(tmp, [str(self.dir / "app.log*")], chunk_rows=chunk_rows)
        self.app = App(parse(cfg, base=tmp), store=store).open()
        self.store = store
        self.corpus = Corpus()
        self.rng = random.Random(42)
        self.n = 0

    def records(self, count: int) -> list[Entry]:
        out = []
        for _ in range(count):
            self.n += 1
            out.append(good(prediction(self.rng, self.n, rid=f"r-{self.n:05d}")))
        return out

    def write(self, path: Path, count: int) -> None:
        self.corpus.write(path, self.records(count))

    def append(self, path: Path, entries: list[Entry] | int) -> None:
        if isinstance(entries, int):
            entries = self.records(entries)
        first = self.corpus.files.get(str(path), 0) + 1
        self.corpus.write(path, entries, mode="ab", first_line=first)

    def rename(self, old: Path, new: Path) -> None:
        old.rename(new)
        self.corpus.files[str(new)] = self.corpus.files.pop(str(old))

    def run(self) -> dict[str, Any]:
        """What the run read (files with something new, rows, ...); ``matched`` (files
        the glob found) is checked where it matters, in the setup checks' tests."""
        report = self.app.ingest().to_dict()["sources"]["predictions"]
        assert report["matched"] >= report["files"]
        return {k: v for k, v in report.items() if k not in ("bytes", "matched")}

    def check(self) -> None:
        assert_stored_exactly(self.store, self.corpus)


def counts(rows: int, *, files: int, duplicates: int = 0, restarted: int = 0, **q: int) -> Any:
    return {
        "files": files,
        "rows": rows,
        "duplicates": duplicates,
        "quarantined": q,
        "restarted": restarted,
    }


def test_appended_lines_are_read_by_the_next_run(tmp_path: Path, store: Store) -> None:
    f = Follower(tmp_path, store)
    f.write(f.log, 50)
    assert f.run() == counts(50, files=1)
    f.append(f.log, 30)
    f.append(f.log, [bad("{not json", "bad_json")])
    f.append(f.log, 5)
    assert f.run() == counts(35, files=1, bad_json=1)
    f.check()


def test_partial_last_line_waits_for_its_newline(tmp_path: Path, store: Store) -> None:
    f = Follower(tmp_path, store)
    f.write(f.log, 10)
    last = prediction(f.rng, 999, rid="r-partial")
    last["features"]["country"] = "Zürich"
    data = json.dumps(last, ensure_ascii=False).encode()
    cut = data.index("ü".encode()) + 1  # inside the two bytes of the ü
    with open(f.log, "ab") as fh:
        fh.write(data[:cut])
    assert f.run() == counts(10, files=1)
    with open(f.log, "ab") as fh:
        fh.write(data[cut:])
    # the file has unread bytes, but no complete line among them
    assert f.run() == counts(0, files=1)
    f.check()  # neither stored nor quarantined yet

    with open(f.log, "ab") as fh:
        fh.write(b"\n")
    assert f.run() == counts(1, files=1)
    f.corpus.expect(str(f.log), 11, good(last))
    f.check()


def test_rotation_by_rename_loses_and_repeats_nothing(tmp_path: Path, store: Store) -> None:
    f = Follower(tmp_path, store)
    f.write(f.log, 100)
    assert f.run() == counts(100, files=1)

    # the writer adds lines, the last one unfinished, then logrotate renames the file
    f.append(f.log, 20)
    tail = dumps(prediction(f.rng, 998, rid="r-finished-after-rotation"))
    with open(f.log, "ab") as fh:
        fh.write(tail[:40])
    f.rename(f.log, f.dir / "app.log.1")
    # the old writer finishes its line in the renamed file; a new file starts at the old path
    with open(f.dir / "app.log.1", "ab") as fh:
        fh.write(tail[40:] + b"\n")
    f.corpus.expect(str(f.dir / "app.log.1"), 121, good(json.loads(tail)))
    f.corpus.touch(f.dir / "app.log.1")
    f.write(f.log, 40)
    assert f.run() == counts(61, files=2)
    f.check()

    # rotate again: .1 -> .2, current -> .1, a new current file
    f.append(f.log, 7)
    f.rename(f.dir / "app.log.1", f.dir / "app.log.2")
    f.rename(f.log, f.dir / "app.log.1")
    f.write(f.log, 3)
    assert f.run() == counts(10, files=2)
    assert f.run() == counts(0, files=0)
    f.check()


@pytest.mark.parametrize("rewritten", ["shorter", "longer"])
def test_copytruncate_restarts_from_the_beginning(
    tmp_path: Path, store: Store, rewritten: str
) -> None:
    """logrotate's copytruncate: the copy is a new file whose rows are already stored, the
    original is truncated in place and written again (shorter or, by the next run, longer
    than what was read of it)."""
    f = Follower(tmp_path, store)
    f.write(f.log, 100)
    assert f.run() == counts(100, files=1)
    f.append(f.log, 10)  # not read before the rotation

    shutil.copyfile(f.log, f.dir / "app.log.1")
    f.corpus.files[str(f.dir / "app.log.1")] = 110
    for i, line in enumerate(f.log.read_bytes().splitlines(), start=1):
        f.corpus.expect(str(f.dir / "app.log.1"), i, good(json.loads(line)))
    f.corpus.touch(f.dir / "app.log.1")
    with open(f.log, "r+b") as fh:
        fh.truncate(0)
    f.corpus.files[str(f.log)] = 0
    f.append(f.log, 5 if rewritten == "shorter" else 150)

    new = 5 if rewritten == "shorter" else 150
    assert f.run() == counts(10 + new, files=2, duplicates=100, restarted=1)
    f.check()
    assert f.run() == counts(0, files=0)


def test_file_cut_to_a_prefix_is_read_again_from_the_start(tmp_path: Path, store: Store) -> None:
    """Truncated to a prefix of itself (so its first bytes are unchanged), then appended to:
    the appended lines are read, and the kept ones count as duplicates."""
    f = Follower(tmp_path, store)
    f.write(f.log, 100)
    assert f.run() == counts(100, files=1)
    kept = f.log.read_bytes().splitlines(keepends=True)[:60]
    os.truncate(f.log, sum(map(len, kept)))
    f.corpus.files[str(f.log)] = 60
    f.append(f.log, 10)

    assert f.run() == counts(10, files=1, duplicates=60, restarted=1)
    f.check()


def test_reused_inode_with_other_first_bytes_is_a_new_file(tmp_path: Path, store: Store) -> None:
    """A file key (device, inode) seen before, but other content: read from the start.

    The inode's content is replaced in place, which is what the ingestor sees when the file
    system hands a deleted file's inode to a new file (the key alone cannot tell them apart).
    """
    f = Follower(tmp_path, store)
    f.write(f.log, 30)
    assert f.run() == counts(30, files=1)
    inode = f.log.stat().st_ino

    replacement = f.records(60)  # longer than the old file: no truncation to notice
    fd = os.open(f.log, os.O_WRONLY)
    try:
        os.pwrite(fd, b"".join(e.data + b"\n" for e in replacement), 0)
    finally:
        os.close(fd)
    assert f.log.stat().st_ino == inode
    for i, entry in enumerate(replacement, start=1):
        f.corpus.expect(str(f.log), i, entry)
    f.corpus.touch(f.log)

    assert f.run() == counts(60, files=1, restarted=1)
    f.check()


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every ingestion table's content, without the times rows were written at."""
    tables = {
        "predictions": schema.predictions,
        "labels": schema.labels,
        "quarantine": schema.quarantine,
        "checkpoints": schema.checkpoints,
        "windows": schema.windows,
    }
    out = {}
    with store.connect() as conn:
        for name, t in tables.items():
            columns = [c for c in t.c if c.name not in ("updated_at", "created_at")]
            out[name] = sorted(tuple(map(repr, r)) for r in conn.execute(select(*columns)))
    return out


def test_three_runs_with_nothing_new_change_nothing(tmp_path: Path, store: Store) -> None:
    f = Follower(tmp_path, store)
    f.write(f.log, 40)
    f.append(f.log, [bad('{"id": "x"}', "missing_ts"), Entry(b""), *f.records(3)])
    f.write(f.dir / "app.log.1", 20)
    (f.dir / "app.log.2").write_bytes(b"")
    with open(f.log, "ab") as fh:
        fh.write(b'{"id": "unfinished", ')
    assert f.run() == counts(63, files=2, missing_ts=1)
    before = snapshot(store)
    assert before["checkpoints"] and before["windows"] and before["quarantine"]

    for _ in range(3):
        # app.log is looked at again (its unfinished line), and nothing else
        assert f.run() == counts(0, files=1)
        assert snapshot(store) == before
    f.check()
