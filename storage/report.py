"""Queries behind the weekly business report: one period's predictions with their labels
and the features its segments need, the statistics of its windows, its incidents and
alert messages, and the review queue's activity.

A period is ``[start, end)`` in UTC; a prediction belongs to it by its own ``ts``.
Nothing is written here: the reports themselves are files (see :mod:`driftd.report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import and_, func, or_, select

from storage import schema
from storage.results import WindowResults
from storage.store import Store

ROW_COLUMNS = (
    "id",
    "ts",
    "model_version",
    "variant",
    "prediction",
    "score",
    "label",
    "label_ts",
)


def _load(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


class ReportQueries:
    def __init__(self, store: Store) -> None:
        self.store = store

    def count(self, model: str, start: datetime, end: datetime) -> int:
        """Predictions of the period."""
        p = schema.predictions
        with self.store.connect("counting a period's predictions") as conn:
            n: int = conn.execute(
                select(func.count())
                .select_from(p)
                .where(p.c.model == model, p.c.window_start < end, p.c.ts >= start, p.c.ts < end)
            ).scalar_one()
        return n

    def rows(
        self, model: str, start: datetime, end: datetime, features: Sequence[str] = ()
    ) -> pd.DataFrame:
        """The period's predictions with their labels (None where none arrived) and the
        named features (None where a row has none), ordered by time. Predictions and
        labels are decoded JSON values."""
        p, lab = schema.predictions, schema.labels
        query = (
            select(
                p.c.id,
                p.c.ts,
                p.c.model_version,
                p.c.variant,
                p.c.prediction,
                p.c.score,
                lab.c.label,
                lab.c.ts.label("label_ts"),
                p.c.features,
            )
            .select_from(p.outerjoin(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id)))
            .where(p.c.model == model, p.c.window_start < end, p.c.ts >= start, p.c.ts < end)
            .order_by(p.c.ts, p.c.id)
        )
        columns: dict[str, list[Any]] = {c: [] for c in (*ROW_COLUMNS, *features)}
        wanted = list(features)
        with self.store.connect("reading a period's predictions") as conn:
            for r in conn.execute(query):
                columns["id"].append(r.id)
                columns["ts"].append(r.ts)
                columns["model_version"].append(r.model_version)
                columns["variant"].append(r.variant)
                columns["prediction"].append(_load(r.prediction))
                columns["score"].append(r.score)
                columns["label"].append(_load(r.label))
                columns["label_ts"].append(r.label_ts)
                if wanted:
                    values = orjson.loads(r.features)
                    for name in wanted:
                        columns[name].append(values.get(name))
        # object columns: a missing label stays None (pandas would make it NaN)
        frame = pd.DataFrame(
            {name: pd.Series(values, dtype=object) for name, values in columns.items()}
        )
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
        return frame

    def window_results(self, model: str, start: datetime, end: datetime) -> list[WindowResults]:
        """Finalized statistics of the windows starting in the period, oldest first."""
        w = schema.windows
        with self.store.connect("reading a period's window statistics") as conn:
            rows = conn.execute(
                select(w.c.results)
                .where(
                    w.c.model == model,
                    w.c.start >= start,
                    w.c.start < end,
                    w.c.results.is_not(None),
                )
                .order_by(w.c.start)
            ).scalars()
            return [WindowResults.from_dict(orjson.loads(payload)) for payload in rows]

    def incidents(self, model: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Incidents open at some point of the period, in the order they opened."""
        t = schema.incidents
        with self.store.connect("reading a period's incidents") as conn:
            rows = conn.execute(
                select(t)
                .where(
                    t.c.model == model,
                    t.c.opened_at < end,
                    or_(t.c.resolved_at.is_(None), t.c.resolved_at >= start),
                )
                .order_by(t.c.opened_at, t.c.pk)
            ).all()
        return [
            {
                "rule": r.rule,
                "scope": r.scope,
                "severity": r.severity,
                "state": r.state,
                "summary": r.summary,
                "opened_at": r.opened_at,
                "resolved_at": r.resolved_at,
                "suppressed": r.suppressed,
            }
            for r in rows
        ]

    def messages(self, model: str, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
        """Alert messages queued in the period, by kind and delivery status."""
        t = schema.alert_outbox
        with self.store.connect("counting a period's alert messages") as conn:
            rows = conn.execute(
                select(t.c.kind, t.c.status, func.count())
                .where(t.c.model == model, t.c.created_at >= start, t.c.created_at < end)
                .group_by(t.c.kind, t.c.status)
            ).all()
        out: dict[str, dict[str, int]] = {}
        for kind, status, n in rows:
            out.setdefault(kind, {})[status] = n
        return out

    def review(self, model: str, start: datetime, end: datetime) -> dict[str, Any]:
        """The review queue in the period: items queued (by reason), reviews made (by
        outcome, latest review per item), and items still pending at its end."""
        t = schema.review_items
        with self.store.connect("reading a period's review activity") as conn:
            queued = conn.execute(
                select(t.c.reason, func.count())
                .where(t.c.model == model, t.c.created_at >= start, t.c.created_at < end)
                .group_by(t.c.reason)
            ).all()
            reviewed = conn.execute(
                select(t.c.state, func.count())
                .where(t.c.model == model, t.c.reviewed_at >= start, t.c.reviewed_at < end)
                .group_by(t.c.state)
            ).all()
            pending: int = conn.execute(
                select(func.count())
                .select_from(t)
                .where(
                    t.c.model == model,
                    t.c.created_at < end,
                    or_(t.c.reviewed_at.is_(None), t.c.reviewed_at >= end),
                )
            ).scalar_one()
        return {
            "queued": dict(sorted((reason, n) for reason, n in queued)),
            "reviewed": dict(sorted((state, n) for state, n in reviewed)),
            "pending_at_end": pending,
        }
