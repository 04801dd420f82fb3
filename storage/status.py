"""Read-only summaries of what has been ingested, for ``driftd status`` and health checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from storage import schema
from storage.store import Store


class StatusQueries:
    def __init__(self, store: Store) -> None:
        self.store = store

    def ingestion(self, model: str) -> dict[str, Any]:
        """Per source: files, rows, duplicates, quarantined by reason, last checkpoint time."""
        cp, q = schema.checkpoints, schema.quarantine
        with self.store.connect("reading ingestion status") as conn:
            sources: dict[str, dict[str, Any]] = {}
            for row in conn.execute(select(cp).where(cp.c.model == model).order_by(cp.c.path)):
                s = sources.setdefault(
                    row.source,
                    {
                        "files": 0,
                        "rows": 0,
                        "duplicates": 0,
                        "quarantined": {},
                        "last_ingest_at": None,
                        "checkpoints": [],
                    },
                )
                s["files"] += 1
                s["rows"] += row.rows
                s["duplicates"] += row.duplicates
                last = s["last_ingest_at"]
                s["last_ingest_at"] = row.updated_at if last is None else max(last, row.updated_at)
                s["checkpoints"].append(
                    {
                        "path": row.path,
                        "file_key": row.file_key,
                        "position": row.position,
                        "line": row.line,
                        "rows": row.rows,
                        "updated_at": row.updated_at,
                    }
                )
            reasons = conn.execute(
                select(q.c.source, q.c.reason, func.count())
                .where(q.c.model == model)
                .group_by(q.c.source, q.c.reason)
            )
            for source, reason, n in reasons:
                sources.setdefault(source, {"quarantined": {}})["quarantined"][reason] = n
            return sources

    def last_ingest_at(self, model: str) -> datetime | None:
        cp = schema.checkpoints
        with self.store.connect("reading ingestion status") as conn:
            return conn.execute(
                select(func.max(cp.c.updated_at)).where(cp.c.model == model)
            ).scalar()

    def windows(
        self, model: str, limit: int = 50, *, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` windows (those starting at or after ``since`` when given),
        oldest first, with prediction counts and labelled share."""
        w, p, lab = schema.windows, schema.predictions, schema.labels
        query = select(w.c.start, w.c.end, w.c.predictions, w.c.duplicates, w.c.updated_at).where(
            w.c.model == model
        )
        if since is not None:
            query = query.where(w.c.start >= since)
        with self.store.connect("reading windows") as conn:
            rows = conn.execute(query.order_by(w.c.start.desc()).limit(limit)).all()
            if not rows:
                return []
            oldest = rows[-1].start
            labelled: dict[datetime, int] = dict(
                conn.execute(
                    select(p.c.window_start, func.count())
                    .select_from(p.join(lab, (lab.c.model == p.c.model) & (lab.c.id == p.c.id)))
                    .where(p.c.model == model, p.c.window_start >= oldest)
                    .group_by(p.c.window_start)
                ).all()
            )
        return [
            {
                "start": r.start,
                "end": r.end,
                "predictions": r.predictions,
                "duplicates": r.duplicates,
                "labelled": labelled.get(r.start, 0),
                "label_coverage": round(labelled.get(r.start, 0) / r.predictions, 4)
                if r.predictions
                else 0.0,
                "updated_at": r.updated_at,
            }
            for r in reversed(rows)
        ]

    def counts(self, model: str) -> dict[str, int]:
        p, lab, q = schema.predictions, schema.labels, schema.quarantine
        with self.store.connect("counting rows") as conn:
            return {
                "predictions": conn.execute(
                    select(func.count()).select_from(p).where(p.c.model == model)
                ).scalar_one(),
                "labels": conn.execute(
                    select(func.count()).select_from(lab).where(lab.c.model == model)
                ).scalar_one(),
                "quarantined": conn.execute(
                    select(func.count()).select_from(q).where(q.c.model == model)
                ).scalar_one(),
            }

    def quarantine(
        self,
        model: str,
        *,
        source: str | None = None,
        reason: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Quarantined records, newest first: where each was (source, path, line, byte
        offset), why (reason, detail) and an excerpt of it; ``since``: quarantined then
        or later."""
        q = schema.quarantine
        query = select(q).where(q.c.model == model)
        if since is not None:
            query = query.where(q.c.created_at >= since)
        if source is not None:
            query = query.where(q.c.source == source)
        if reason is not None:
            query = query.where(q.c.reason == reason)
        with self.store.connect("reading the quarantine") as conn:
            rows = conn.execute(query.order_by(q.c.pk.desc()).limit(limit)).all()
        return [_quarantined(row) for row in rows]

    def quarantined(self, model: str, pk: int) -> dict[str, Any] | None:
        """One quarantined record of ``model``, or None."""
        q = schema.quarantine
        with self.store.connect("reading the quarantine") as conn:
            row = conn.execute(select(q).where(q.c.model == model, q.c.pk == pk)).first()
        return None if row is None else _quarantined(row)


def _quarantined(row: Any) -> dict[str, Any]:
    return {
        "pk": row.pk,
        "source": row.source,
        "path": row.path,
        "line": row.line,
        "byte_offset": row.byte_offset,
        "reason": row.reason,
        "detail": row.detail,
        "excerpt": row.excerpt,
        "created_at": row.created_at,
    }
