"""Ingestion: prediction and label logs into the store, exactly once.

For every source, :class:`Ingestor` follows the files its globs match (see
:mod:`monitor.sources`), validates each record (:mod:`monitor.records`) and hands chunks
of rows, quarantined records and the new checkpoint to the repository, which commits
them in one transaction. A malformed record never stops ingestion; it is quarantined
with its reason and position, and every good record around it is stored.
"""

from __future__ import annotations

import csv
import gc
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Literal

import orjson

from monitor import blocks
from monitor.abc import IngestRepository as Repository
from monitor.decoding import (
    csv_value,
    decode_json_line,
    excerpt,
    refuse_non_finite,
    window_of,
)
from monitor.records import (
    FeatureType,
    Reason,
    RecordSpec,
    Rejected,
    label_parser,
    prediction_line_parser,
    prediction_parser,
)
from monitor.sources import (
    HEAD_BYTES,
    FileState,
    Line,
    discover,
    head_fingerprint,
    read_lines,
    same_head,
)
from monitor.windows import RowWindows, Windows
from storage.rows import Checkpoint, Chunk

logger = logging.getLogger(__name__)

Kind = Literal["predictions", "labels"]
Format = Literal["jsonl", "csv", "parquet"]


@dataclass(frozen=True)
class Source:
    """One log source: which files, in which format, holding which kind of record."""

    name: str
    kind: Kind
    paths: tuple[str, ...]
    format: Format = "jsonl"
    spec: RecordSpec = field(default_factory=RecordSpec)


@dataclass
class SourceReport:
    matched: int = 0  # files the source's globs match (0: a typo in a path, or no data yet)
    files: int = 0  # files with something new
    rows: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    restarted: int = 0  # truncated files and reused inodes read again from the start

    def to_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "files": self.files,
            "rows": self.rows,
            "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())),
            "bytes": self.bytes,
            "restarted": self.restarted,
        }


@dataclass
class IngestReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)
    windows: Counter[datetime] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sources.values())

    @property
    def quarantined(self) -> int:
        return sum(sum(s.quarantined.values()) for s in self.sources.values())

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self.sources.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "sources": {name: s.to_dict() for name, s in self.sources.items()},
            "windows": {ts.isoformat(): n for ts, n in sorted(self.windows.items())},
        }


Progress = Callable[[str, int], None]  # (source name, bytes or rows advanced)
LineParser = Callable[[bytes], dict[str, Any] | None]  # None: left to the general path


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk is built or committed.

    A chunk keeps tens of thousands of container objects alive (its lines), which the
    collector traverses again and again and then promotes to the oldest generation,
    setting off a full collection per chunk: 15% of ingestion's CPU time. A chunk makes
    no reference cycles worth collecting early; the collector runs again between chunks,
    so memory stays flat.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Ingestor:
    """Reads every source once, from its checkpoints to the end of its complete lines."""

    def __init__(
        self,
        *,
        repository: Repository,
        model: str,
        sources: Sequence[Source],
        windows: Windows,
        max_line_bytes: int = 1 << 20,
        chunk_rows: int = 20_000,
        progress: Progress | None = None,
        feature_blocks: bool = False,
    ) -> None:
        self.repository = repository
        self.model = model
        self.sources = tuple(sources)
        self.windows = windows
        self.max_line_bytes = max_line_bytes
        self.chunk_rows = chunk_rows
        # write the predictions' feature blocks (monitor.blocks): only for a statistics
        # job that folds and deletes them (a reference is configured)
        self.feature_blocks = feature_blocks
        self._block_encoders: dict[str, blocks.BlockEncoder] = {}
        self.progress = progress

    def run(self) -> IngestReport:
        report = IngestReport()
        for source in self.sources:
            report.sources[source.name] = self._ingest_source(source, report)
        return report

    def pending_bytes(self) -> dict[str, int]:
        """Bytes (or Parquet row groups) not yet read, per source; for progress bars."""
        out = {}
        for source in self.sources:
            cps = self.repository.checkpoints(self.model, source.name)
            total = 0
            for f in discover(source.paths):
                cp = cps.get(f.key)
                done = cp.position if cp and source.format != "parquet" else 0
                total += max(f.size - done, 0)
            out[source.name] = total
        return out

    # -- one source ---------------------------------------------------------------------

    def _ingest_source(self, source: Source, report: IngestReport) -> SourceReport:
        sr = SourceReport()
        checkpoints = self.repository.checkpoints(self.model, source.name)
        parse_line: LineParser | None = None
        if source.kind == "predictions":
            window = window_of(self.windows)
            parse = prediction_parser(source.spec, window)
            if source.format == "jsonl":
                parse_line = prediction_line_parser(source.spec, window)
        else:
            parse = label_parser(source.spec)
        found_files = discover(source.paths)
        sr.matched = len(found_files)
        if not found_files:
            logger.warning("source %s: no file matches %s", source.name, ", ".join(source.paths))
        for found in found_files:
            try:
                fh = open(found.path, "rb")  # noqa: SIM115
            except OSError as exc:
                logger.warning("source %s: cannot open %s: %s", source.name, found.path, exc)
                continue
            with fh:
                st = os.fstat(fh.fileno())
                key = f"{st.st_dev}:{st.st_ino}"
                known = checkpoints.get(key)
                cp = self._resume_point(source, found, key, st.st_size, known, fh)
                if cp is None:
                    continue
                if known is not None and known.position > 0 and cp.position == 0:
                    sr.restarted += 1
                sr.files += 1
                for chunk in self._chunks(source, fh, found.path, cp, parse, parse_line):
                    with _gc_paused():
                        result = self.repository.commit(chunk)
                    sr.rows += result.inserted
                    sr.duplicates += result.duplicates
                    for q in chunk.quarantined:
                        sr.quarantined[q["reason"]] += 1
                    report.windows.update(result.windows)
                    advanced = chunk.checkpoint.position - cp.position
                    sr.bytes += advanced
                    if self.progress:
                        self.progress(source.name, advanced)
                    cp = chunk.checkpoint
        return sr

    def _resume_point(
        self,
        source: Source,
        found: FileState,
        key: str,
        size: int,
        cp: Checkpoint | None,
        fh: BinaryIO,
    ) -> Checkpoint | None:
        """Where to start reading a file, or None when there is nothing new."""
        fresh = Checkpoint(key, found.path, None, 0, 0)
        if cp is None:
            return fresh if size > 0 else None
        if not same_head(fh.fileno(), cp.head):
            logger.info("source %s: %s is a new file on a reused inode", source.name, found.path)
            return fresh
        if source.format == "parquet":
            return cp  # row groups are counted while reading
        if size < cp.position:
            logger.warning(
                "source %s: %s was truncated (%d < %d bytes read); reading it again",
                source.name,
                found.path,
                size,
                cp.position,
            )
            return fresh
        if size == cp.position:
            return None
        if cp.path != found.path:
            logger.info("source %s: %s was renamed to %s", source.name, cp.path, found.path)
        return Checkpoint(key, found.path, cp.head, cp.position, cp.line)

    def _chunks(
        self,
        source: Source,
        fh: BinaryIO,
        path: str,
        cp: Checkpoint,
        parse: Callable[[Any], dict[str, Any]],
        parse_line: LineParser | None = None,
    ) -> Iterator[Chunk]:
        if source.format == "parquet":
            yield from self._parquet_chunks(source, fh, path, cp, parse)
            return
        decode: Callable[[Line], Any] | None = None
        if source.format == "csv":
            header = self._csv_header(fh)
            if header is None:
                return
            decode = self._csv_decoder(header, source.spec)
        fd = fh.fileno()
        pending = read_lines(
            fh,
            offset=cp.position,
            line=cp.line,
            max_line_bytes=self.max_line_bytes,
            chunk_lines=self.chunk_rows,
        )
        while True:
            with _gc_paused():
                lc = next(pending, None)
                if lc is None:
                    return
                chunk = self._chunk(source, cp, path)
                if decode is None:
                    self._json_rows(chunk, lc.lines, path, parse, parse_line)
                else:
                    self._csv_rows(chunk, lc.lines, path, parse, decode)
                lc.lines.clear()  # free the lines before the collector runs again
            chunk.checkpoint = Checkpoint(
                cp.file_key, path, head_fingerprint(fd, lc.end_offset), lc.end_offset, lc.end_line
            )
            yield chunk

    def _json_rows(
        self,
        chunk: Chunk,
        lines: list[Line],
        path: str,
        parse: Callable[[Any], dict[str, Any]],
        parse_line: LineParser | None = None,
    ) -> None:
        """Validate JSON lines into the chunk's rows and quarantine (the hot path).

        ``parse_line`` (the typed fast path) goes first; what it leaves goes through
        orjson and ``parse``.
        """
        loads, append = orjson.loads, chunk.rows.append
        for line in lines:
            if line.too_long:
                self._reject(chunk, path, line, self._too_long())
                continue
            try:
                if parse_line is not None:
                    row = parse_line(line.data)
                    if row is not None:
                        append(row)
                        continue
                try:
                    record = loads(line.data)
                except orjson.JSONDecodeError:
                    if not line.data.strip():
                        continue  # blank lines are skipped
                    record = decode_json_line(line.data)
                append(parse(record))
            except Rejected as rej:
                self._reject(chunk, path, line, rej)

    def _csv_rows(
        self,
        chunk: Chunk,
        lines: list[Line],
        path: str,
        parse: Callable[[Any], dict[str, Any]],
        decode: Callable[[Line], Any],
    ) -> None:
        for line in lines:
            if line.number == 1 or not line.data.strip():
                continue  # the header, or a blank line
            if line.too_long:
                self._reject(chunk, path, line, self._too_long())
                continue
            try:
                chunk.rows.append(parse(decode(line)))
            except Rejected as rej:
                self._reject(chunk, path, line, rej)

    def _too_long(self) -> Rejected:
        return Rejected(Reason.LINE_TOO_LONG, f"line over {self.max_line_bytes} bytes")

    def _chunk(self, source: Source, cp: Checkpoint, path: str) -> Chunk:
        chunk = Chunk(model=self.model, source=source.name, kind=source.kind, checkpoint=cp)
        if source.kind == "predictions" and self.feature_blocks:
            encoder = self._block_encoders.get(source.name)
            if encoder is None:
                schema = source.spec.schema
                numeric = [n for n, kind in schema.items() if kind is FeatureType.NUMERIC]
                encoder = blocks.BlockEncoder(list(schema) or None, numeric)
                self._block_encoders[source.name] = encoder
            chunk.block = encoder
        if isinstance(self.windows, RowWindows):
            chunk.window_rows = self.windows.rows
        else:
            chunk.window_size = self.windows.size
        return chunk

    @staticmethod
    def _reject(chunk: Chunk, path: str, line: Line, rej: Rejected) -> None:
        chunk.quarantined.append(
            {
                "path": path,
                "line": line.number,
                "byte_offset": line.offset,
                "reason": str(rej.reason),
                "detail": rej.detail,
                "excerpt": excerpt(line.data),
            }
        )

    def _csv_header(self, fh: BinaryIO) -> list[str] | None:
        first = os.pread(fh.fileno(), self.max_line_bytes, 0)
        nl = first.find(b"\n")
        if nl < 0:
            return None  # header not complete yet
        text = first[:nl].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
        return next(csv.reader([text]))

    @staticmethod
    def _csv_decoder(header: list[str], spec: RecordSpec) -> Callable[[Line], Any]:
        text_fields = {spec.fields.id, spec.fields.model_version, spec.fields.variant}
        kinds = [
            FeatureType.CATEGORICAL if name in text_fields else spec.schema.get(name)
            for name in header
        ]  # ids stay as written: "007" is not 7

        def decode(line: Line) -> dict[str, Any]:
            try:
                text = line.data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Rejected(Reason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}") from None
            try:
                values = next(csv.reader([text]))
            except csv.Error as exc:
                raise Rejected(Reason.BAD_CSV_ROW, str(exc)) from None
            if len(values) != len(header):
                raise Rejected(
                    Reason.BAD_CSV_ROW, f"{len(values)} fields, the header has {len(header)}"
                )
            record = {
                name: csv_value(value, kind)
                for name, value, kind in zip(header, values, kinds, strict=True)
            }
            refuse_non_finite(record)
            return record

        return decode

    def _parquet_chunks(
        self,
        source: Source,
        fh: BinaryIO,
        path: str,
        cp: Checkpoint,
        parse: Callable[[Any], dict[str, Any]],
    ) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(fh)
        except (pa.ArrowInvalid, OSError) as exc:
            # most often a file still being written (no footer yet): try again next run
            logger.warning("source %s: %s is not readable Parquet yet: %s", source.name, path, exc)
            return
        fd = fh.fileno()
        line = cp.line
        for group in range(cp.position, pf.num_row_groups):
            chunk = self._chunk(source, cp, path)
            for record in pf.read_row_group(group).to_pylist():
                line += 1
                try:
                    refuse_non_finite(record)
                    chunk.rows.append(parse(record))
                except Rejected as rej:
                    raw = orjson.dumps(record, default=str)
                    self._reject(chunk, path, Line(line, -1, raw), rej)
            chunk.checkpoint = Checkpoint(
                cp.file_key, path, head_fingerprint(fd, HEAD_BYTES), group + 1, line
            )
            yield chunk
