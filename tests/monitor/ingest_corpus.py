"""Helpers for the ingestion tests: seeded logs with their expected outcome, and store reads.

A :class:`Corpus` writes log files line by line and keeps what ingestion must end up
with: the first good record of every id (later ones are duplicates), and the reason each
malformed line is quarantined under, by (path, line number). Files must be written in
the order ingestion reads them (oldest mtime first; :meth:`Corpus.write` sets mtimes).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from storage import schema
from storage.store import Store

MODEL = "fraud"
SCHEMA = {"amount": "numeric", "country": "categorical", "is_new": "boolean"}
START = datetime(2026, 11, 28, tzinfo=UTC)
COUNTRIES = ("DE", "FR", "US", "BR", "IN", "NL")
MTIME_BASE = 1_790_000_000  # files get mtimes from here on, one second apart


def rfc3339(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def prediction(rng: random.Random, n: int, *, rid: str | None = None) -> dict[str, Any]:
    """A valid prediction record; ``n`` spaces event times 7 s apart (about 500 per hour)."""
    score = round(rng.random(), 6)
    return {
        "id": rid if rid is not None else f"req-{n:07d}",
        "ts": rfc3339(START + timedelta(seconds=7 * n)),
        "model_version": "3",
        "variant": rng.choice(("champion", "challenger")),
        "features": {
            "amount": round(rng.uniform(1, 900), 2),
            "country": rng.choice(COUNTRIES),
            "is_new": rng.random() < 0.2,
        },
        "prediction": int(score >= 0.5),
        "score": score,
    }


def label(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "id": f"req-{n:07d}",
        "label": rng.randint(0, 1),
        "ts": rfc3339(START + timedelta(days=1, seconds=7 * n)),
    }


def dumps(record: Any) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Entry:
    """One line of a log file: good (``record``), malformed (``reason``) or neither (blank)."""

    data: bytes
    record: dict[str, Any] | None = None
    reason: str | None = None


def good(record: dict[str, Any]) -> Entry:
    return Entry(dumps(record), record=record)


def bad(data: bytes | str | dict[str, Any], reason: str) -> Entry:
    if isinstance(data, dict):
        data = dumps(data)
    elif isinstance(data, str):
        data = data.encode()
    return Entry(data, reason=reason)


@dataclass
class Corpus:
    """Log files written by a test and what ingesting them must store."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> first good record
    quarantined: dict[tuple[str, int], str] = field(default_factory=dict)  # (path, line) -> why
    duplicates: int = 0
    files: dict[str, int] = field(default_factory=dict)  # path -> complete lines
    _mtime: int = MTIME_BASE

    def expect(self, path: str, number: int, entry: Entry) -> None:
        if entry.reason is not None:
            self.quarantined[(path, number)] = entry.reason
        elif entry.record is not None:
            rid = str(entry.record["id"])
            if rid in self.rows:
                self.duplicates += 1
            else:
                self.rows[rid] = entry.record

    def write(
        self,
        path: Path,
        entries: list[Entry],
        *,
        newline: bytes = b"\n",
        prefix: bytes = b"",
        first_line: int = 1,
        mode: str = "wb",
    ) -> None:
        """Write (or append) complete lines and record what they must produce."""
        with open(path, mode) as fh:
            fh.write(prefix + b"".join(e.data + newline for e in entries))
        for i, entry in enumerate(entries):
            self.expect(str(path), first_line + i, entry)
        self.files[str(path)] = first_line - 1 + len(entries)
        self.touch(path)

    def touch(self, path: Path) -> None:
        """Give ``path`` the next mtime, so discovery reads files in writing order."""
        self._mtime += 1
        os.utime(path, (self._mtime, self._mtime))

    @property
    def reasons(self) -> Counter[str]:
        return Counter(self.quarantined.values())


def config(
    tmp: Path,
    predictions: list[str],
    *,
    url: str | None = None,
    labels: list[str] | None = None,
    fmt: str = "jsonl",
    sources: dict[str, Any] | None = None,
    **ingest: Any,
) -> dict[str, Any]:
    """A driftd config (as parsed YAML) with the test schema and a store in ``tmp``.

    ``sources`` replaces the single prediction source (and ``labels``) when given.
    """
    if sources is None:
        sources = {"predictions": [{"paths": predictions, "format": fmt}]}
        if labels:
            sources["labels"] = [{"paths": labels}]
    return {
        "model": {"name": MODEL},
        "sources": sources,
        "schema": SCHEMA,
        "workspace": str(tmp / "workspace"),
        "storage": {"url": url or f"sqlite:///{tmp / 'workspace' / 'driftd.db'}"},
        "ingest": ingest,
    }


# -- reading the store back ------------------------------------------------------------


def stored_predictions(store: Store, model: str = MODEL) -> list[dict[str, Any]]:
    t = schema.predictions
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).where(t.c.model == model))]


def stored_labels(store: Store, model: str = MODEL) -> dict[str, Any]:
    t = schema.labels
    with store.connect() as conn:
        rows = conn.execute(select(t.c.id, t.c.label).where(t.c.model == model))
        return {r.id: orjson.loads(r.label) for r in rows}


def quarantine_rows(store: Store, model: str = MODEL) -> list[tuple[str, int, str]]:
    """(path, line, reason) of every quarantined record, one tuple per stored row."""
    t = schema.quarantine
    with store.connect() as conn:
        rows = conn.execute(select(t.c.path, t.c.line, t.c.reason).where(t.c.model == model))
        return [(r.path, r.line, r.reason) for r in rows]


def checkpoint_rows(store: Store, model: str = MODEL) -> list[dict[str, Any]]:
    t = schema.checkpoints
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).where(t.c.model == model))]


def window_counts(store: Store, model: str = MODEL) -> dict[datetime, int]:
    t = schema.windows
    with store.connect() as conn:
        rows = conn.execute(select(t.c.start, t.c.predictions).where(t.c.model == model))
        return {r.start: r.predictions for r in rows}


def lines_read(store: Store, model: str = MODEL) -> int:
    """Lines consumed so far over all files (how far ingestion has got)."""
    t = schema.checkpoints
    with store.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(t.c.line), 0)).where(t.c.model == model)
            ).scalar_one()
        )


def event_time(value: Any) -> datetime:
    """What an RFC 3339 text (naive means UTC) or epoch seconds stand for."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    ts = datetime.fromisoformat(value)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def expected_row(record: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a good record, in the terms :func:`stored_view` uses."""
    return {
        "ts": event_time(record["ts"]),
        "model_version": record.get("model_version"),
        "variant": record.get("variant"),
        "features": record["features"],
        "prediction": record.get("prediction"),
        "score": record.get("score"),
        "probabilities": record.get("probabilities"),
    }


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def stored_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": row["ts"],
        "model_version": row["model_version"],
        "variant": row["variant"],
        "features": orjson.loads(row["features"]),
        "prediction": _json(row["prediction"]),
        "score": row["score"],
        "probabilities": _json(row["probabilities"]),
    }


def assert_stored_exactly(store: Store, corpus: Corpus, model: str = MODEL) -> None:
    """The store holds the corpus's good rows and quarantined lines, each exactly once."""
    rows = stored_predictions(store, model)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "an id is stored twice"
    assert set(ids) == set(corpus.rows)
    mismatched = [r["id"] for r in rows if stored_view(r) != expected_row(corpus.rows[r["id"]])]
    assert not mismatched, f"{len(mismatched)} rows differ from their input, e.g. {mismatched[:3]}"
    quarantined = quarantine_rows(store, model)
    twice = [
        (Path(p).name, ln)
        for (p, ln), n in Counter((p, ln) for p, ln, _ in quarantined).items()
        if n > 1
    ]
    assert not twice, f"quarantined more than once: {twice[:5]}"
    assert {(p, ln): r for p, ln, r in quarantined} == corpus.quarantined


def union(*corpora: Corpus) -> Corpus:
    """One corpus expecting what several sources with disjoint ids expect together."""
    out = Corpus()
    for c in corpora:
        assert not set(out.rows) & set(c.rows), "sources must not share ids"
        out.rows.update(c.rows)
        out.quarantined.update(c.quarantined)
        out.duplicates += c.duplicates
        out.files.update(c.files)
    return out
