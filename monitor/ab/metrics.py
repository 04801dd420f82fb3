"""Per-row values of the A/B metrics (pure).

Every A/B metric here is the mean of one value per labelled row, so an arm is summarised
by mergeable :class:`~monitor.ab.sequential.Moments` and compared by the confidence
sequence for a difference of means. Rows outside a metric's denominator (positives for
the false-positive rate) get NaN and are left out of its moments.

========== ======================================================= ================
metric     value of one row                                        better
========== ======================================================= ================
accuracy   1 if the prediction equals the label, else 0             higher
error_rate 1 - accuracy                                             lower
fpr        on rows labelled negative: 1 if predicted positive       lower
fnr        on rows labelled positive: 1 if predicted negative       lower
cost       ``cost_fn`` for a missed positive, ``cost_fp`` for a     lower
           false alarm, 0 otherwise (the business's units)
abs_error  ``|prediction - label|`` (regression)                    lower
========== ======================================================= ================

ROC AUC is not a mean of rows, so it is not an A/B metric; the shadow comparison
(:mod:`monitor.shadow`) compares it on the same rows with a paired bootstrap instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.ab.sequential import Moments

FloatArray = npt.NDArray[np.float64]

HIGHER_IS_BETTER = {
    "accuracy": True,
    "error_rate": False,
    "fpr": False,
    "fnr": False,
    "cost": False,
    "abs_error": False,
}
METRICS = frozenset(HIGHER_IS_BETTER)


@dataclass(frozen=True)
class Costs:
    """What one error costs, in the business's units (binary classification)."""

    false_negative: float = 1.0
    false_positive: float = 1.0


def check_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown A/B metric {name!r}; choose one of {sorted(METRICS)}")
    return name


def row_values(
    metric: str,
    labels: Sequence[Any],
    predictions: Sequence[Any],
    *,
    positive: Any = 1,
    costs: Costs | None = None,
) -> FloatArray:
    """The metric's value for each row (NaN where the row is not in its denominator).

    ``labels`` and ``predictions`` are the decoded JSON values as stored; rows whose
    label or prediction is missing (None) count in no metric.
    """
    check_metric(metric)
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels for {len(predictions)} predictions")
    known = np.array(
        [y is not None and p is not None for y, p in zip(labels, predictions, strict=True)],
        dtype=bool,
    )
    out = np.full(len(labels), np.nan)
    if metric == "abs_error":
        for i in np.flatnonzero(known).tolist():
            out[i] = abs(float(predictions[i]) - float(labels[i]))
        return out
    right = np.array([y == p for y, p in zip(labels, predictions, strict=True)], dtype=bool)
    is_pos = np.array([y == positive for y in labels], dtype=bool)
    said_pos = np.array([p == positive for p in predictions], dtype=bool)
    if metric == "accuracy":
        out[known] = right[known]
    elif metric == "error_rate":
        out[known] = ~right[known]
    elif metric == "fpr":
        rows = known & ~is_pos
        out[rows] = said_pos[rows]
    elif metric == "fnr":
        rows = known & is_pos
        out[rows] = ~said_pos[rows]
    else:  # cost
        c = costs or Costs()
        missed = is_pos & ~said_pos
        alarm = ~is_pos & said_pos
        out[known] = (c.false_negative * missed + c.false_positive * alarm)[known]
    return out


def fold(
    moments: Mapping[str, Mapping[str, Moments]],
    variants: Sequence[str | None],
    labels: Sequence[Any],
    predictions: Sequence[Any],
    metrics: Sequence[str],
    *,
    positive: Any = 1,
    costs: Costs | None = None,
) -> dict[str, dict[str, Moments]]:
    """``moments`` ({variant: {metric: Moments}}) with one page of rows merged in: how
    the A/B job folds the stored pages (rows without a variant are skipped)."""
    out = {v: dict(m) for v, m in moments.items()}
    v = np.array(variants, dtype=object)
    for variant in sorted({x for x in variants if x is not None}):
        rows = np.flatnonzero(v == variant).tolist()
        ys, ps = [labels[i] for i in rows], [predictions[i] for i in rows]
        arm = out.setdefault(variant, {})
        for metric in metrics:
            page = Moments.of(row_values(metric, ys, ps, positive=positive, costs=costs))
            arm[metric] = arm[metric].merge(page) if metric in arm else page
    return out


__all__ = ["Costs", "HIGHER_IS_BETTER", "METRICS", "check_metric", "fold", "row_values"]
