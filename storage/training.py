"""The labelled production rows of a time range, for the next training set.

:func:`training_rows` reads the predictions of a model whose ``ts`` falls in
``[start, end)`` joined with their production labels and their review items, and gives
each the label training should use and its provenance, as
:meth:`storage.review.ReviewRepository.training_labels` does for the whole history:
a review (confirmed or relabelled) overrides the production label, discarded rows are
left out, rows without any label are left out, and reviewed rows are not eligible for
evaluation holdouts (a reviewer chose them: they are no sample of production).

It also returns what the model served (score, prediction, version, variant), so the
gates can compare a candidate with the champion's logged scores on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_, select

from storage import schema
from storage.labels import DISCARDED, PRODUCTION, REVIEW, REVIEWED
from storage.store import Store


@dataclass(frozen=True)
class TrainingRow:
    id: str
    ts: datetime
    features: dict[str, Any]
    label: Any  # the training label: the review's when reviewed, else production's
    source: str  # "production" or "review"
    production_label: Any  # None when only a review labelled the row
    review_state: str | None  # confirmed or relabelled for reviewed rows
    reviewer: str | None
    reviewed_at: datetime | None
    holdout_eligible: bool  # False for reviewed rows
    score: float | None  # what the serving model scored
    prediction: Any
    model_version: str | None
    variant: str | None


def _load(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def training_rows(store: Store, model: str, *, start: datetime, end: datetime) -> list[TrainingRow]:
    """Labelled predictions of ``model`` with ``start <= ts < end``, oldest first."""
    if end <= start:
        raise ValueError(f"empty time range: start {start.isoformat()} >= end {end.isoformat()}")
    p, lab, t = schema.predictions, schema.labels, schema.review_items
    query = (
        select(
            p.c.id,
            p.c.ts,
            p.c.features,
            p.c.score,
            p.c.prediction,
            p.c.model_version,
            p.c.variant,
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
        .where(
            p.c.model == model,
            p.c.ts >= start,
            p.c.ts < end,
            or_(lab.c.label.is_not(None), t.c.state.in_(REVIEWED)),
            or_(t.c.state.is_(None), t.c.state != DISCARDED),
        )
        .order_by(p.c.ts, p.c.id)
    )
    out = []
    with store.connect("reading training rows") as conn:
        for r in conn.execute(query):
            reviewed = r.state in REVIEWED
            production = _load(r.label)
            reviewed_label = _load(r.new_label) if reviewed else None
            out.append(
                TrainingRow(
                    id=r.id,
                    ts=r.ts,
                    features=orjson.loads(r.features),
                    label=reviewed_label if reviewed_label is not None else production,
                    source=REVIEW if reviewed else PRODUCTION,
                    production_label=production,
                    review_state=r.state if reviewed else None,
                    reviewer=r.reviewer if reviewed else None,
                    reviewed_at=r.reviewed_at if reviewed else None,
                    holdout_eligible=not reviewed,
                    score=r.score,
                    prediction=_load(r.prediction),
                    model_version=r.model_version,
                    variant=r.variant,
                )
            )
    return out
