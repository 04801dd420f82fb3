"""Queries behind the A/B analysis and the shadow comparison.

A/B: the serving side logs which variant served each prediction (``predictions.variant``).
Each cycle the analysis needs, since the experiment started, the served count per
variant (the sample ratio check) and the matured rows that have a label, with what the
metric needs (prediction, score, label), per variant. Rows are read in primary-key
pages so an experiment of millions of rows is folded into mergeable moments without
holding it in memory.

Shadow: the challenger scores rows the champion served; its answers go to
``shadow_predictions`` (one row per model, challenger version and prediction id), and
the comparison reads both models' answers with the label on the same rows, in serving
(primary key) order.

Maturity is the caller's: a row is matured when its prediction time is before
``matured_before`` (now minus the label delay), as for the performance windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, select

from storage import schema
from storage.store import Store

shadow_predictions = schema.shadow_predictions


@dataclass(frozen=True)
class LabelledRow:
    pk: int  # predictions.pk: the page cursor
    id: str
    ts: datetime
    variant: str | None
    model_version: str | None
    prediction: Any  # decoded JSON
    score: float | None
    label: Any  # decoded JSON


@dataclass(frozen=True)
class ShadowInput:
    pk: int
    id: str
    ts: datetime
    features: dict[str, Any]


@dataclass(frozen=True)
class ShadowScore:
    id: str
    prediction: Any  # JSON value
    score: float | None = None
    probabilities: dict[str, float] | None = None


@dataclass(frozen=True)
class ShadowRow:
    pk: int
    id: str
    ts: datetime
    label: Any  # decoded JSON
    champion_prediction: Any
    champion_score: float | None
    challenger_prediction: Any
    challenger_score: float | None


def _decode(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


class ExperimentRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- A/B ------------------------------------------------------------------------------

    def served_counts(
        self, model: str, *, since: datetime, until: datetime | None = None
    ) -> dict[str | None, int]:
        """Predictions served per variant (None: logged without one) in [since, until)."""
        p = schema.predictions
        query = select(p.c.variant, func.count()).where(p.c.model == model, p.c.ts >= since)
        if until is not None:
            query = query.where(p.c.ts < until)
        with self.store.connect("counting served predictions per variant") as conn:
            rows = conn.execute(query.group_by(p.c.variant)).all()
        return {variant: int(n) for variant, n in rows}

    def label_coverage(
        self, model: str, *, since: datetime, matured_before: datetime
    ) -> dict[str | None, tuple[int, int]]:
        """Per variant, (matured predictions, those with a label): how much of the
        matured traffic the analysis can see."""
        p, lab = schema.predictions, schema.labels
        query = (
            select(p.c.variant, func.count(), func.count(lab.c.pk))
            .outerjoin(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
            .where(p.c.model == model, p.c.ts >= since, p.c.ts < matured_before)
            .group_by(p.c.variant)
        )
        with self.store.connect("reading label coverage per variant") as conn:
            return {v: (int(n), int(k)) for v, n, k in conn.execute(query)}

    def labelled_rows(
        self,
        model: str,
        *,
        since: datetime,
        matured_before: datetime,
        variants: Sequence[str] | None = None,
        after: int = 0,
        limit: int = 50_000,
    ) -> list[LabelledRow]:
        """One page of matured labelled rows (predictions.pk > ``after``), in pk order."""
        p, lab = schema.predictions, schema.labels
        query = (
            select(
                p.c.pk,
                p.c.id,
                p.c.ts,
                p.c.variant,
                p.c.model_version,
                p.c.prediction,
                p.c.score,
                lab.c.label,
            )
            .join(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
            .where(p.c.model == model, p.c.ts >= since, p.c.ts < matured_before, p.c.pk > after)
        )
        if variants is not None:
            query = query.where(p.c.variant.in_(list(variants)))
        query = query.order_by(p.c.pk).limit(limit)
        with self.store.connect("reading labelled rows per variant") as conn:
            return [
                LabelledRow(
                    r.pk,
                    r.id,
                    r.ts,
                    r.variant,
                    r.model_version,
                    _decode(r.prediction),
                    r.score,
                    _decode(r.label),
                )
                for r in conn.execute(query)
            ]

    def iter_labelled_rows(
        self,
        model: str,
        *,
        since: datetime,
        matured_before: datetime,
        variants: Sequence[str] | None = None,
        page: int = 50_000,
    ) -> Iterator[list[LabelledRow]]:
        """Every matured labelled row, page after page (each page one short read)."""
        after = 0
        while True:
            rows = self.labelled_rows(
                model,
                since=since,
                matured_before=matured_before,
                variants=variants,
                after=after,
                limit=page,
            )
            if rows:
                yield rows
            if len(rows) < page:
                return
            after = rows[-1].pk

    # -- shadow ---------------------------------------------------------------------------

    def unscored(
        self,
        model: str,
        version: str,
        *,
        since: datetime,
        variants: Sequence[str | None] = ("champion", None),
        limit: int = 10_000,
    ) -> list[ShadowInput]:
        """The oldest served rows the challenger ``version`` has not scored yet (rows the
        champion served, or logged without a variant), in pk order."""
        p, s = schema.predictions, shadow_predictions
        named = [v for v in variants if v is not None]
        served_by: ColumnElement[bool] = p.c.variant.in_(named)
        if None in variants:
            served_by = served_by | p.c.variant.is_(None)
        query = (
            select(p.c.pk, p.c.id, p.c.ts, p.c.features)
            .outerjoin(s, and_(s.c.model == p.c.model, s.c.version == version, s.c.id == p.c.id))
            .where(p.c.model == model, p.c.ts >= since, served_by, s.c.pk.is_(None))
            .order_by(p.c.pk)
            .limit(limit)
        )
        with self.store.connect("reading rows to score in shadow") as conn:
            return [
                ShadowInput(r.pk, r.id, r.ts, orjson.loads(r.features)) for r in conn.execute(query)
            ]

    def save_shadow(
        self, model: str, version: str, scores: Iterable[ShadowScore], *, now: datetime
    ) -> int:
        """Store the challenger's answers; rows it already scored are left as they are
        (re-running a batch is harmless). Returns the rows written."""
        s = shadow_predictions
        batch = {score.id: score for score in scores}
        if not batch:
            return 0
        with self.store.transaction("saving shadow predictions") as conn:
            done = set(
                conn.execute(
                    select(s.c.id).where(
                        s.c.model == model, s.c.version == version, s.c.id.in_(list(batch))
                    )
                ).scalars()
            )
            new = [
                {
                    "model": model,
                    "version": version,
                    "id": score.id,
                    "prediction": orjson.dumps(score.prediction).decode(),
                    "score": score.score,
                    "probabilities": None
                    if score.probabilities is None
                    else orjson.dumps(score.probabilities).decode(),
                    "scored_at": now,
                }
                for rid, score in batch.items()
                if rid not in done
            ]
            if new:
                conn.execute(s.insert(), new)
        return len(new)

    def shadow_counts(self, model: str, version: str) -> tuple[int, int]:
        """Rows the challenger ``version`` was run on, and those it gave no score for
        (it failed on them; stored so that they are not tried again)."""
        s = shadow_predictions
        query = select(func.count(), func.count(s.c.score)).where(
            s.c.model == model, s.c.version == version
        )
        with self.store.connect("counting shadow predictions") as conn:
            total, scored = conn.execute(query).one()
        return int(total), int(total) - int(scored)

    def shadow_rows(
        self,
        model: str,
        version: str,
        *,
        since: datetime,
        matured_before: datetime,
        limit: int,
    ) -> tuple[list[ShadowRow], int]:
        """The first ``limit`` matured labelled rows both models answered, in serving
        (pk) order, and how many such rows there are in all."""
        p, lab, s = schema.predictions, schema.labels, shadow_predictions
        joined = (
            select(
                p.c.pk,
                p.c.id,
                p.c.ts,
                lab.c.label,
                p.c.prediction,
                p.c.score,
                s.c.prediction.label("shadow_prediction"),
                s.c.score.label("shadow_score"),
            )
            .join(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
            .join(s, and_(s.c.model == p.c.model, s.c.version == version, s.c.id == p.c.id))
            .where(p.c.model == model, p.c.ts >= since, p.c.ts < matured_before)
        )
        with self.store.connect("reading shadow rows") as conn:
            total = conn.execute(select(func.count()).select_from(joined.subquery())).scalar()
            rows = conn.execute(joined.order_by(p.c.pk).limit(limit)).all()
        return [
            ShadowRow(
                r.pk,
                r.id,
                r.ts,
                _decode(r.label),
                _decode(r.prediction),
                r.score,
                _decode(r.shadow_prediction),
                r.shadow_score,
            )
            for r in rows
        ], int(total or 0)


__all__ = [
    "ExperimentRepository",
    "LabelledRow",
    "ShadowInput",
    "ShadowRow",
    "ShadowScore",
    "shadow_predictions",
]
