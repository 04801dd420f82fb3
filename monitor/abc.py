"""The interfaces :mod:`monitor` needs from storage, in one place.

Each engine of :mod:`monitor` reads and writes through one of these protocols;
:mod:`storage` implements them (``IngestRepository``, ``StatisticsRepository``,
``PerformanceRepository``, ``ReviewRepository`` there), and tests may pass their own.
The rows they exchange are :mod:`storage.rows` dataclasses, which load no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from storage.results import Detection, WindowPerformance, WindowResults
from storage.rows import (
    BlockGroup,
    Checkpoint,
    Chunk,
    ChunkResult,
    ErrorStream,
    LabelledRow,
    StoredRow,
    StoredRows,
    StreamRow,
    ValueRun,
)

if TYPE_CHECKING:
    from monitor.review import Candidate, Row


class IngestRepository(Protocol):
    def checkpoints(self, model: str, source: str) -> dict[str, Checkpoint]: ...

    def commit(self, chunk: Chunk) -> ChunkResult: ...


class StatisticsRepository(Protocol):
    def cursor(self, model: str) -> int: ...

    def rows_after(self, model: str, position: int, limit: int) -> list[StoredRow]: ...

    def rows_batch_after(
        self, model: str, position: int, limit: int, upto: int | None = None
    ) -> StoredRows: ...

    def block_groups_after(self, model: str, position: int, rows: int) -> list[BlockGroup]: ...

    def has_rows(self, model: str, after: int, upto: int) -> bool: ...

    def states(self, model: str, starts: list[datetime]) -> dict[datetime, str | None]: ...

    def commit_fold(
        self,
        model: str,
        position: int,
        states: Mapping[datetime, str],
        values: Iterable[ValueRun] = (),
        *,
        rows_after: int | None = None,
    ) -> None: ...

    def window_value_runs(
        self, model: str, start: datetime, folded: int
    ) -> list[tuple[int, str | None]]: ...

    def window_value_payloads(self, pks: Sequence[int]) -> list[bytes]: ...

    def replace_window_values(
        self,
        model: str,
        start: datetime,
        replaced: Sequence[int],
        runs: Iterable[ValueRun],
    ) -> None: ...

    def unfinalized(self, model: str) -> list[tuple[datetime, datetime, int, int, str]]: ...

    def save_results(self, model: str, results: Mapping[datetime, WindowResults]) -> None: ...

    def window_sizes(self, model: str, limit: int) -> list[tuple[datetime, int]]: ...

    def window_features(
        self, model: str, start: datetime, chunk: int = ...
    ) -> Iterator[list[str]]: ...


class PerformanceRepository(Protocol):
    def changed_windows(self, model: str) -> tuple[list[datetime], int]: ...

    def matured_windows(self, model: str, *, ended_before: datetime) -> list[datetime]: ...

    def window_bounds(self, model: str, starts: Sequence[datetime]) -> dict[datetime, datetime]: ...

    def window_rows(self, model: str, start: datetime) -> list[LabelledRow]: ...

    def windows_rows(
        self, model: str, starts: Sequence[datetime]
    ) -> dict[datetime, list[LabelledRow]]: ...

    def save_windows(
        self,
        model: str,
        rows: Sequence[WindowPerformance],
        *,
        cursor: int | None,
        now: datetime,
    ) -> None: ...

    def stream(self, model: str) -> ErrorStream: ...

    def stream_rows(
        self, model: str, *, after: int, pending: Sequence[int], limit: int
    ) -> list[StreamRow]: ...

    def save_stream(
        self,
        model: str,
        stream: ErrorStream,
        detections: Sequence[Detection],
        *,
        now: datetime,
    ) -> None: ...


class ReviewRepository(Protocol):
    def window_rows(self, model: str, window_start: datetime) -> Sequence[Row]: ...

    def enqueue(
        self,
        model: str,
        window_start: datetime,
        candidates: Sequence[Candidate],
        *,
        per_window: int,
        now: datetime,
    ) -> Mapping[str, int]: ...

    def windows_rows(
        self, model: str, starts: Sequence[datetime]
    ) -> Mapping[datetime, Sequence[Row]]: ...

    def enqueue_windows(
        self,
        model: str,
        windows: Mapping[datetime, Sequence[Candidate]],
        *,
        per_window: int,
        now: datetime,
    ) -> Mapping[datetime, Mapping[str, int]]: ...
