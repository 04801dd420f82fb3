"""The rows :mod:`monitor` and :mod:`storage` exchange (ingestion chunks, stored
predictions, labelled rows, the error stream), free of SQLAlchemy so that
:mod:`monitor` can import them without loading the database layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Checkpoint:
    """How far one file of one source has been read.

    ``rows``, ``duplicates`` and ``quarantined`` are totals as read from the store; when
    a chunk is committed they are incremented by the chunk's own counts.
    """

    file_key: str
    path: str
    head: str | None
    position: int
    line: int
    rows: int = 0
    duplicates: int = 0
    quarantined: int = 0


@dataclass
class Chunk:
    """One unit of ingestion: what to write and where reading got to."""

    model: str
    source: str
    kind: str  # "predictions" or "labels"
    checkpoint: Checkpoint
    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    window_size: timedelta = timedelta(hours=1)  # time windows: rows carry window_start
    # row-count windows of this many predictions: window_start is assigned at commit
    window_rows: int | None = None
    # predictions: the feature block of some of the rows (monitor.blocks.BlockEncoder), made
    # for the rows the commit stores, per window; None: no blocks
    block: Callable[[list[dict[str, Any]]], EncodedBlock | None] | None = None


@dataclass(frozen=True)
class ChunkResult:
    inserted: int
    duplicates: int
    quarantined: int
    windows: dict[datetime, int]  # window start -> rows inserted into it


@dataclass(frozen=True)
class StoredRow:
    pk: int
    id: str
    window_start: datetime
    features: str  # JSON object
    prediction: str | None = None  # JSON value
    score: float | None = None


@dataclass(frozen=True)
class StoredRows:
    """Stored predictions column by column (what the statistics job folds): one list per
    field, in ``pk`` order. Cheaper than a :class:`StoredRow` per row when a job reads
    millions."""

    pks: list[int]
    ids: list[str]
    window_starts: list[datetime]
    features: list[str]  # JSON objects
    predictions: list[str | None]  # JSON values
    scores: list[float | None]

    def __len__(self) -> int:
        return len(self.pks)


# a run of a window's values (monitor.drift.runs): window start, column (None: every
# column, runs stored before 0009), number of values, payload
ValueRun = tuple[datetime, str | None, int, bytes]


@dataclass(frozen=True)
class EncodedBlock:
    """What ingestion stores of some rows of one window for the fold (:mod:`monitor.blocks`):
    the block, and the run of each numeric feature's values in row order (a window value
    run, :mod:`monitor.drift.runs`, that stays with the window after the fold)."""

    payload: bytes
    runs: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # name -> (n, payload)


@dataclass(frozen=True)
class StoredBlock:
    """A block as the fold reads it: its window, payload, and its rows' runs (name ->
    payload)."""

    start: datetime
    payload: bytes
    runs: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockGroup:
    """The feature blocks of one ingested chunk (:mod:`monitor.blocks`): the model's rows
    with ``after < pk <= upto``, one block per window."""

    after: int
    upto: int
    blocks: list[StoredBlock]


@dataclass(frozen=True)
class LabelledRow:
    id: str
    ts: datetime
    prediction: Any  # decoded JSON
    score: float | None
    label: Any  # decoded JSON; None when no label yet


@dataclass(frozen=True)
class StreamRow:
    label_pk: int
    id: str
    label: Any
    label_ts: datetime
    ts: datetime | None  # the prediction's time; None while the prediction is missing
    prediction: Any


@dataclass(frozen=True)
class ErrorStream:
    label_cursor: int
    position: int
    pending: list[int]
    detectors: dict[str, Any]
