"""The labels the next model learns from: production labels, overridden by reviews.

:func:`training_labels` is what the next training set is made of: every labelled
prediction with its label and provenance (relabelled: the reviewer's label; confirmed:
the confirmed label; discarded: left out). Reviewed rows are not eligible for
evaluation holdouts: a reviewer chose them, so they are not a sample of production.
:func:`label_classes` lists the labels production has used, which a review label of a
classification task must be one of when the reference table names no target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_, select

from storage import schema
from storage.store import Store

PENDING, CONFIRMED, RELABELLED, DISCARDED = "pending", "confirmed", "relabelled", "discarded"
REVIEWED = (CONFIRMED, RELABELLED)  # review states whose label goes into training
PRODUCTION, REVIEW = "production", "review"  # where a training label comes from


@dataclass(frozen=True)
class TrainingLabel:
    id: str
    ts: datetime
    features: dict[str, Any]
    label: Any
    source: str  # "production" or "review"
    review_state: str | None  # confirmed or relabelled for reviewed rows
    reviewer: str | None
    reviewed_at: datetime | None
    holdout_eligible: bool  # False for reviewed rows


def load_json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def labelled_query(model: str, *columns: Any, start: Any = None, end: Any = None) -> Any:
    """Predictions of ``model`` that have a training label (a production label, or a
    confirming or relabelling review; discarded ones left out), oldest first, with their
    id, ts, features, production label, review state, new label, reviewer and review time,
    plus ``columns`` of the predictions table; ``start <= ts < end`` when given."""
    p, lab, t = schema.predictions, schema.labels, schema.review_items
    conditions = [
        p.c.model == model,
        or_(lab.c.label.is_not(None), t.c.state.in_(REVIEWED)),
        or_(t.c.state.is_(None), t.c.state != DISCARDED),
    ]
    if start is not None:
        conditions.append(p.c.ts >= start)
    if end is not None:
        conditions.append(p.c.ts < end)
    return (
        select(
            p.c.id,
            p.c.ts,
            p.c.features,
            *columns,
            lab.c.label,
            t.c.state,
            t.c.new_label,
            t.c.reviewer,
            t.c.reviewed_at,
        )
        .select_from(
            p.outerjoin(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id)).outerjoin(
                t, and_(t.c.model == p.c.model, t.c.prediction_id == p.c.id)
            )
        )
        .where(*conditions)
        .order_by(p.c.ts, p.c.id)
    )


def training_labels(store: Store, model: str) -> list[TrainingLabel]:
    """Every labelled prediction with its training label and where it comes from,
    oldest first: reviews override production labels; discarded rows are left out."""
    query = labelled_query(model)
    out = []
    with store.connect("reading training labels") as conn:
        for r in conn.execute(query):
            reviewed = r.state in REVIEWED
            label = load_json(r.new_label) if reviewed and r.new_label is not None else None
            out.append(
                TrainingLabel(
                    id=r.id,
                    ts=r.ts,
                    features=orjson.loads(r.features),
                    label=label if label is not None else load_json(r.label),
                    source=REVIEW if reviewed else PRODUCTION,
                    review_state=r.state if reviewed else None,
                    reviewer=r.reviewer if reviewed else None,
                    reviewed_at=r.reviewed_at if reviewed else None,
                    holdout_eligible=not reviewed,
                )
            )
    return out


def label_classes(store: Store, model: str, *, limit: int = 100) -> list[Any]:
    """The distinct production labels of ``model`` (at most ``limit``), in stored order."""
    lab = schema.labels
    query = select(lab.c.label).where(lab.c.model == model).distinct().limit(limit)
    with store.connect("reading label classes") as conn:
        return [load_json(value) for value in conn.execute(query).scalars()]
