"""Queries behind concept drift: the delayed-label join, per-window performance rows,
and the error stream the sequential detectors consume.

Labels join predictions by (model, id) whenever either arrives. The performance job
finds the windows whose join changed since it last looked (new labels, new predictions)
through its own cursor on ``labels.pk``; the error stream feeds the detectors in label
arrival order, remembering labels whose prediction has not arrived yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage import schema
from storage.results import Detection, DetectionDetails, WindowPerformance
from storage.rows import ErrorStream, LabelledRow, StreamRow
from storage.store import Store

CURSOR = "performance"  # cursors.name: labels.pk folded into window coverage


def _decode(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


class PerformanceRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- windows ------------------------------------------------------------------------

    def changed_windows(self, model: str) -> tuple[list[datetime], int]:
        """Windows whose label join may have changed, and the labels cursor to commit
        once they are recomputed: windows with labels newer than the cursor, and windows
        whose prediction count differs from the one last computed."""
        p, lab, w, wp, c = (
            schema.predictions,
            schema.labels,
            schema.windows,
            schema.window_performance,
            schema.cursors,
        )
        with self.store.connect("finding windows with new labels") as conn:
            cursor = (
                conn.execute(
                    select(c.c.position).where(c.c.model == model, c.c.name == CURSOR)
                ).scalar()
                or 0
            )
            newest = (
                conn.execute(select(func.max(lab.c.pk)).where(lab.c.model == model)).scalar()
                or cursor
            )
            labelled = conn.execute(
                select(p.c.window_start)
                .distinct()
                .join(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
                .where(p.c.model == model, lab.c.pk > cursor, lab.c.pk <= newest)
            ).scalars()
            grown = conn.execute(
                select(w.c.start)
                .outerjoin(wp, and_(wp.c.model == w.c.model, wp.c.window_start == w.c.start))
                .where(
                    w.c.model == model,
                    (wp.c.predictions.is_(None)) | (wp.c.predictions != w.c.predictions),
                )
            ).scalars()
            return sorted(set(labelled) | set(grown)), int(newest)

    def matured_windows(self, model: str, *, ended_before: datetime) -> list[datetime]:
        """Windows still marked pending whose end is before ``ended_before``: their labels
        have matured since they were last computed, so their state changes now."""
        wp, w = schema.window_performance, schema.windows
        with self.store.connect("reading window performance") as conn:
            return list(
                conn.execute(
                    select(wp.c.window_start)
                    .join(w, and_(w.c.model == wp.c.model, w.c.start == wp.c.window_start))
                    .where(wp.c.model == model, wp.c.state == "pending", w.c.end <= ended_before)
                ).scalars()
            )

    def window_bounds(self, model: str, starts: Sequence[datetime]) -> dict[datetime, datetime]:
        w = schema.windows
        with self.store.connect("reading windows") as conn:
            rows = conn.execute(
                select(w.c.start, w.c.end).where(w.c.model == model, w.c.start.in_(starts))
            )
            return {start: end for start, end in rows}

    def window_rows(self, model: str, start: datetime) -> list[LabelledRow]:
        """A window's predictions with their labels (None where none arrived yet)."""
        p, lab = schema.predictions, schema.labels
        with self.store.connect("reading a window's predictions and labels") as conn:
            rows = conn.execute(
                select(p.c.id, p.c.ts, p.c.prediction, p.c.score, lab.c.label)
                .outerjoin(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
                .where(p.c.model == model, p.c.window_start == start)
                .order_by(p.c.pk)
            )
            return [
                LabelledRow(r.id, r.ts, _decode(r.prediction), r.score, _decode(r.label))
                for r in rows
            ]

    def windows_rows(
        self, model: str, starts: Sequence[datetime]
    ) -> dict[datetime, list[LabelledRow]]:
        """The predictions with their labels of several windows in one query, by window
        start (windows without predictions are absent)."""
        p, lab = schema.predictions, schema.labels
        out: dict[datetime, list[LabelledRow]] = {}
        if not starts:
            return out
        with self.store.connect("reading windows' predictions and labels") as conn:
            rows = conn.execute(
                select(p.c.window_start, p.c.id, p.c.ts, p.c.prediction, p.c.score, lab.c.label)
                .outerjoin(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
                .where(p.c.model == model, p.c.window_start.in_(list(starts)))
                .order_by(p.c.window_start, p.c.pk)
            )
            loads = orjson.loads
            for start, id_, ts, prediction, score, label in rows:
                out.setdefault(start, []).append(
                    LabelledRow(
                        id_,
                        ts,
                        None if prediction is None else loads(prediction),
                        score,
                        None if label is None else loads(label),
                    )
                )
        return out

    def save_windows(
        self,
        model: str,
        rows: Iterable[WindowPerformance],
        *,
        cursor: int | None,
        now: datetime,
    ) -> None:
        """Upsert window performance rows and advance the labels cursor, atomically."""
        wp, c = schema.window_performance, schema.cursors
        values = [
            {
                "model": model,
                "window_start": row.start,
                "predictions": row.predictions,
                "labelled": row.labelled,
                "state": row.state,
                "realized": _json(row.realized_dict()),
                "estimated": _json(None if row.estimated is None else row.estimated.to_dict()),
                "updated_at": now,
            }
            for row in rows
        ]
        with self.store.transaction("saving window performance") as conn:
            if values:  # one upsert for all the windows: no round trip per window
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                stmt = dialect.insert(wp)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[wp.c.model, wp.c.window_start],
                        set_={
                            name: stmt.excluded[name]
                            for name in (
                                "predictions",
                                "labelled",
                                "state",
                                "realized",
                                "estimated",
                                "updated_at",
                            )
                        },
                    ),
                    values,
                )
            if cursor is not None:
                _set_cursor(conn, c, model, cursor, now)

    def windows(
        self, model: str, limit: int = 50, *, starts: Sequence[datetime] | None = None
    ) -> list[WindowPerformance]:
        """The latest windows' performance (only those of ``starts`` when given), oldest
        first."""
        wp = schema.window_performance
        query = select(wp).where(wp.c.model == model)
        if starts is not None:
            query = query.where(wp.c.window_start.in_(list(starts)))
        with self.store.connect("reading window performance") as conn:
            rows = conn.execute(query.order_by(wp.c.window_start.desc()).limit(limit)).all()
        return [
            WindowPerformance.from_stored(
                start=r.window_start,
                predictions=r.predictions,
                labelled=r.labelled,
                state=r.state,
                realized=_decode(r.realized),
                estimated=_decode(r.estimated),
            )
            for r in reversed(rows)
        ]

    # -- the error stream ---------------------------------------------------------------

    def stream(self, model: str) -> ErrorStream:
        t = schema.error_streams
        with self.store.connect("reading the error stream") as conn:
            row = conn.execute(select(t).where(t.c.model == model)).first()
        if row is None:
            return ErrorStream(0, 0, [], {})
        return ErrorStream(
            row.label_cursor, row.position, orjson.loads(row.pending), orjson.loads(row.detectors)
        )

    def stream_rows(
        self, model: str, *, after: int, pending: Sequence[int], limit: int
    ) -> list[StreamRow]:
        """Labels after ``after`` (and the pending ones), in arrival order, with their
        predictions when these have arrived."""
        p, lab = schema.predictions, schema.labels
        query = (
            select(lab.c.pk, lab.c.id, lab.c.label, lab.c.ts, p.c.ts.label("pts"), p.c.prediction)
            .outerjoin(p, and_(p.c.model == lab.c.model, p.c.id == lab.c.id))
            .where(lab.c.model == model)
            .order_by(lab.c.pk)
        )
        with self.store.connect("reading the error stream") as conn:
            out = []
            if pending:
                rows = conn.execute(query.where(lab.c.pk.in_(list(pending))))
                out += [_stream_row(r) for r in rows]
            rows = conn.execute(query.where(lab.c.pk > after).limit(limit))
            out += [_stream_row(r) for r in rows]
            return out

    def save_stream(
        self,
        model: str,
        stream: ErrorStream,
        detections: Sequence[Detection],
        *,
        now: datetime,
    ) -> None:
        """The stream's progress and the detections it produced, in one transaction."""
        t, d = schema.error_streams, schema.detections
        values = {
            "label_cursor": stream.label_cursor,
            "position": stream.position,
            "pending": orjson.dumps(stream.pending).decode(),
            "detectors": orjson.dumps(stream.detectors).decode(),
            "updated_at": now,
        }
        with self.store.transaction("saving the error stream") as conn:
            done = conn.execute(update(t).where(t.c.model == model).values(**values))
            if not done.rowcount:
                conn.execute(t.insert().values(model=model, **values))
            for detection in detections:
                conn.execute(
                    d.insert().values(
                        model=model,
                        detector=detection.detector,
                        position=detection.position,
                        ts=detection.ts,
                        details=_json(detection.details.to_dict()),
                        created_at=now,
                    )
                )

    def detections(self, model: str, limit: int = 50) -> list[Detection]:
        d = schema.detections
        with self.store.connect("reading detections") as conn:
            rows = conn.execute(
                select(d).where(d.c.model == model).order_by(d.c.pk.desc()).limit(limit)
            ).all()
        return [
            Detection(
                r.detector,
                r.position,
                r.ts,
                DetectionDetails.from_dict(_decode(r.details) or {}),
                r.created_at,
            )
            for r in reversed(rows)
        ]


def _stream_row(r: Any) -> StreamRow:
    return StreamRow(r.pk, r.id, _decode(r.label), r.ts, r.pts, _decode(r.prediction))


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


def _set_cursor(conn: Connection, c: Any, model: str, position: int, now: datetime) -> None:
    done = conn.execute(
        update(c)
        .where(c.c.model == model, c.c.name == CURSOR)
        .values(position=position, updated_at=now)
    )
    if not done.rowcount:
        conn.execute(c.insert().values(model=model, name=CURSOR, position=position, updated_at=now))
