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

from storage import schema
from storage.labels import PRODUCTION, REVIEW, REVIEWED, labelled_query, load_json
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


def training_rows(store: Store, model: str, *, start: datetime, end: datetime) -> list[TrainingRow]:
    """Labelled predictions of ``model`` with ``start <= ts < end``, oldest first."""
    if end <= start:
        raise ValueError(f"empty time range: start {start.isoformat()} >= end {end.isoformat()}")
    p = schema.predictions
    columns = (p.c.score, p.c.prediction, p.c.model_version, p.c.variant)
    query = labelled_query(model, *columns, start=start, end=end)
    out = []
    with store.connect("reading training rows") as conn:
        for r in conn.execute(query):
            reviewed = r.state in REVIEWED
            production = load_json(r.label)
            reviewed_label = load_json(r.new_label) if reviewed else None
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
                    prediction=load_json(r.prediction),
                    model_version=r.model_version,
                    variant=r.variant,
                )
            )
    return out
