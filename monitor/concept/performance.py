"""Realized performance of a window once its labels have matured (pure).

:func:`classification_performance` and :func:`regression_performance` compute a window's
metrics, each with a confidence interval and the name of the method behind it:

====================================  ==================================================
metric                                interval (``Metric.method``)
====================================  ==================================================
accuracy; binary precision, recall,   ``"wilson"``: Wilson score interval of the
false-negative and false-positive     proportion (successes over its own denominator,
rate                                  e.g. TP over TP + FP for precision)
binary ROC AUC                        ``"delong"``: normal interval with DeLong's variance
                                      (midranks, so ties count one half), clipped to [0, 1]
F1, average precision, log loss,      ``"bootstrap"``: percentile interval of a seeded
multiclass macro precision / recall   bootstrap (``resamples`` resamples, 200 by default,
/ ROC AUC, MAE, RMSE, MAPE, R2        the same resamples for every metric of the window)
====================================  ==================================================

The bootstrap is vectorised: a resample is a vector of multiplicities over the window's
rows (binary rows taken in descending score order), and every metric here is a function
of the weighted empirical distribution, so a block of resamples is a matrix product or
one cumulative sum over the rows sorted once. It costs about 50 ms per resample and
million rows with scores (10 s for 200 resamples of 1M rows); pass fewer ``resamples``
for very large windows, whose intervals are narrow anyway.

Point values equal scikit-learn's (``accuracy_score``, ``precision_score``, ...,
``roc_auc_score``, ``average_precision_score``, ``log_loss``, ``r2_score``) wherever they
are defined. Where a ratio has no denominator (precision without predicted positives,
ROC AUC with one class, R2 of a constant target) the value is NaN rather than
scikit-learn's warning and 0. Binary scores are the positive-class probability;
multiclass scores are an ``(n, k)`` array with columns in ``classes`` order, and macro
averages run over the classes that occur in the window (scikit-learn's classes when it
infers them), a class never predicted counting precision 0.

:func:`degraded` decides whether a window's metric is worse than the reference's in a
way that both matters (``tolerance``) and is not just the noise of a small window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.concept.intervals import (
    BoolArray,
    FloatArray,
    Ranked,
    Statistic,
    bootstrap_intervals,
    delong_roc_auc,
    point_value,
    safe_ratio,
    wilson_interval,
    z_value,
)

BOOTSTRAP_RESAMPLES = 200

# metrics where a lower value is better; all others are higher-is-better
LOWER_IS_BETTER = frozenset({"log_loss", "fnr", "fpr", "mae", "rmse", "mape"})


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses, mappings, tuples and numpy scalars made JSON values;
    NaN and infinities become None."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    lower: float
    upper: float
    method: str  # "wilson", "delong" or "bootstrap" (see the module docstring)
    n: int  # the rows behind the value (for a Wilson interval: the proportion's denominator)

    @property
    def higher_is_better(self) -> bool:
        return self.name not in LOWER_IS_BETTER

    def to_dict(self) -> dict[str, Any]:
        return {**jsonable(self), "higher_is_better": self.higher_is_better}


@dataclass(frozen=True)
class Performance:
    task: str  # "binary", "multiclass" or "regression"
    n: int
    confidence: float
    metrics: Mapping[str, Metric]
    classes: tuple[Any, ...] = ()  # binary: (negative, positive)
    threshold: float | None = None  # binary: the threshold that turned scores into y_pred
    # rows: true class, columns: predicted class, both in `classes` order
    confusion: tuple[tuple[int, ...], ...] = ()
    resamples: int = 0  # bootstrap resamples behind the "bootstrap" intervals
    seed: int = 0

    def __getitem__(self, name: str) -> Metric:
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(
                f"no metric {name!r} in this {self.task} performance; it has {sorted(self.metrics)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        out["metrics"] = {name: m.to_dict() for name, m in self.metrics.items()}
        return out


@dataclass(frozen=True)
class Degradation:
    """Whether a window's metric dropped below the reference by more than the tolerance
    and by more than the noise of a window of its size.

    ``threshold`` is the alert threshold on the window's value: the reference value moved
    in the worse direction by ``max(tolerance, margin)``, where ``margin`` is ``z`` times
    the standard error of the difference (window and reference, from their intervals'
    half-widths on the side facing each other). Flagging ``current`` beyond it is a
    one-sided test at level ``(1 - confidence) / 2`` that also requires the observed
    drop to exceed ``tolerance``; a small window has a wide margin and is not flagged
    for noise, a large one is flagged as soon as the drop exceeds the tolerance.
    """

    metric: str
    higher_is_better: bool
    reference: float
    current: float
    tolerance: float
    margin: float
    threshold: float
    worse_by: float  # how much worse the window is (negative: better)
    degraded: bool
    n: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        return out


# --- classification ---------------------------------------------------------------------


def _classes(labels: np.ndarray) -> tuple[Any, ...]:
    """The sorted labels seen; a window that saw only 0 or only 1 gets (0, 1)."""
    found = tuple(np.unique(labels).tolist())
    if len(found) < 2:
        if set(found) <= {0, 1}:
            return (0, 1)
        raise ValueError(f"the window has only the class {found!r}; pass classes")
    return found


def classification_performance(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike | None,
    scores: npt.ArrayLike | None = None,
    *,
    threshold: float = 0.5,
    classes: Sequence[Any] | None = None,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Performance:
    """Realized classification performance of a window with its labels.

    Binary when ``scores`` is 1-D (the positive-class probability) or when there are two
    classes; the positive class is ``classes[1]`` (by default the larger of the sorted
    labels). ``y_pred`` is what was served; ``None`` derives it from binary scores as
    ``score >= threshold``. Multiclass ``scores`` are ``(n, k)`` probabilities with columns
    in ``classes`` order (by default the sorted labels of ``y_true`` and ``y_pred``).
    """
    yt = np.asarray(y_true)
    n = yt.size
    if n == 0:
        raise ValueError("no rows in the window")
    s = None if scores is None else np.asarray(scores, dtype=np.float64)
    if s is not None:
        if s.ndim not in (1, 2) or s.shape[0] != n:
            raise ValueError(f"scores have shape {s.shape}, expected {n} rows")
        if not np.all(np.isfinite(s)):
            raise ValueError("scores contain NaN or infinite values")
    if y_pred is None:
        if s is None or s.ndim != 1:
            raise ValueError("y_pred may be None only with binary (1-D) scores")
        yp = None
    else:
        yp = np.asarray(y_pred)
        if yp.shape != yt.shape:
            raise ValueError(f"y_pred has {yp.size} rows, y_true {n}")
    binary = s is not None and s.ndim == 1
    if classes is not None:
        cls = tuple(classes)
    else:
        found = yt if yp is None else np.concatenate([yt, yp])
        cls = _classes(found)
    if len(cls) == 2:
        binary = True
        if s is not None and s.ndim == 2:
            s = s[:, 1]
    elif binary or len(cls) < 2:
        raise ValueError(f"binary scores need two classes, got {cls!r}")
    z = z_value(confidence)
    if binary:
        truth = yt == cls[1]
        pred = (s >= threshold) if yp is None and s is not None else (yp == cls[1])
        used = threshold if yp is None else None
        return _binary(truth, pred, s, cls, used, confidence, z, resamples, seed)
    assert yp is not None
    return _multiclass(yt, yp, s, cls, confidence, resamples, seed)


def _binary(
    truth: BoolArray,
    pred: BoolArray,
    s: FloatArray | None,
    classes: tuple[Any, ...],
    threshold: float | None,
    confidence: float,
    z: float,
    resamples: int,
    seed: int,
) -> Performance:
    n = truth.size
    if s is not None:  # resample rows in descending score order: no gather per resample
        order = np.argsort(-s, kind="stable")
        truth, pred, s = truth[order], pred[order], s[order]
    tp = int(np.sum(truth & pred))
    fp = int(np.sum(~truth & pred))
    fn = int(np.sum(truth & ~pred))
    tn = n - tp - fp - fn
    metrics: dict[str, Metric] = {}

    def proportion(name: str, k: int, total: int) -> None:
        lo, hi = wilson_interval(k, total, confidence)
        metrics[name] = Metric(name, k / total if total else math.nan, lo, hi, "wilson", total)

    proportion("accuracy", tp + tn, n)
    proportion("precision", tp, tp + fp)
    proportion("recall", tp, tp + fn)
    ind_tp, ind_err = (truth & pred).astype(float), (truth != pred).astype(float)
    stats: dict[str, Statistic] = {
        "f1": lambda w: safe_ratio(2 * (w @ ind_tp), 2 * (w @ ind_tp) + w @ ind_err)
    }
    if s is not None:
        auc, var = delong_roc_auc(truth, s)
        half = z * math.sqrt(var) if not math.isnan(var) else math.nan
        lo, hi = max(0.0, auc - half), min(1.0, auc + half)
        metrics["roc_auc"] = Metric("roc_auc", auc, lo, hi, "delong", n)
        ranked = Ranked(truth, s)
        eps = np.finfo(np.float64).eps
        loss = -np.log(np.clip(np.where(truth, s, 1.0 - s), eps, 1 - eps))
        stats["average_precision"] = ranked.average_precision
        stats["log_loss"] = lambda w: (w @ loss) / n
    proportion("fnr", fn, tp + fn)
    proportion("fpr", fp, fp + tn)
    _add_bootstrap(metrics, stats, n, confidence, resamples, seed)
    return Performance(
        "binary",
        n,
        confidence,
        metrics,
        classes=classes,
        threshold=threshold,
        confusion=((tn, fp), (fn, tp)),
        resamples=resamples,
        seed=seed,
    )


def _add_bootstrap(
    metrics: dict[str, Metric],
    stats: Mapping[str, Statistic],
    n: int,
    confidence: float,
    resamples: int,
    seed: int,
) -> None:
    intervals = bootstrap_intervals(stats, n, confidence, resamples, seed)
    for name, fn in stats.items():
        lo, hi = intervals[name]
        metrics[name] = Metric(name, point_value(fn, n), lo, hi, "bootstrap", n)


def _multiclass(
    yt: np.ndarray,
    yp: np.ndarray,
    s: FloatArray | None,
    classes: tuple[Any, ...],
    confidence: float,
    resamples: int,
    seed: int,
) -> Performance:
    n = yt.size
    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    try:
        ti = np.array([index[v] for v in yt.tolist()], dtype=np.intp)
        pi = np.array([index[v] for v in yp.tolist()], dtype=np.intp)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of the classes {classes!r}") from None
    if s is not None and s.shape != (n, k):
        raise ValueError(f"multiclass scores have shape {s.shape}, expected {(n, k)}")
    confusion = np.bincount(ti * k + pi, minlength=k * k).reshape(k, k)
    present = np.flatnonzero(confusion.sum(axis=0) + confusion.sum(axis=1) > 0)
    cols = np.arange(k)
    t_hot = (ti[:, None] == cols).astype(np.float64)
    p_hot = (pi[:, None] == cols).astype(np.float64)
    hit = t_hot * p_hot

    def macro(fn: Callable[[FloatArray, FloatArray, FloatArray], FloatArray]) -> Statistic:
        def stat(w: FloatArray) -> FloatArray:
            tp, t, p = w @ hit, w @ t_hot, w @ p_hot
            return np.nan_to_num(fn(tp, t, p)[:, present]).mean(axis=1)

        return stat

    correct = int(np.trace(confusion))
    lo, hi = wilson_interval(correct, n, confidence)
    metrics = {"accuracy": Metric("accuracy", correct / n, lo, hi, "wilson", n)}
    stats: dict[str, Statistic] = {
        "precision": macro(lambda tp, t, p: safe_ratio(tp, p)),
        "recall": macro(lambda tp, t, p: safe_ratio(tp, t)),
        "f1": macro(lambda tp, t, p: safe_ratio(2 * tp, t + p)),
    }
    if s is not None:
        ranked = [Ranked(ti == c, s[:, c]) for c in range(k)]
        both = [c for c in range(k) if 0 < np.sum(ti == c) < n]
        with_pos = [c for c in range(k) if np.any(ti == c)]
        eps = np.finfo(np.float64).eps
        loss = -np.log(np.clip(s[np.arange(n), ti], eps, 1 - eps))

        def mean_over(cs: list[int], attr: str) -> Statistic:
            def stat(w: FloatArray) -> FloatArray:
                if not cs:
                    return np.full(w.shape[0], np.nan)
                return np.mean([getattr(ranked[c], attr)(w) for c in cs], axis=0)

            return stat

        stats["roc_auc"] = mean_over(both, "roc_auc")
        stats["average_precision"] = mean_over(with_pos, "average_precision")
        stats["log_loss"] = lambda w: (w @ loss) / n
    _add_bootstrap(metrics, stats, n, confidence, resamples, seed)
    return Performance(
        "multiclass",
        n,
        confidence,
        metrics,
        classes=classes,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        resamples=resamples,
        seed=seed,
    )


# --- regression -------------------------------------------------------------------------


def regression_performance(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    confidence: float = 0.95,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Performance:
    """MAE, RMSE, MAPE (scikit-learn's: ``|e| / max(|y|, eps)``) and R2 of a window, each
    with a seeded percentile-bootstrap interval. R2 of a constant target is NaN."""
    y = np.asarray(y_true, dtype=np.float64)
    yhat = np.asarray(y_pred, dtype=np.float64)
    n = y.size
    if n == 0:
        raise ValueError("no rows in the window")
    if yhat.shape != y.shape or y.ndim != 1:
        raise ValueError(f"y_pred has shape {yhat.shape}, y_true {y.shape}; expected equal 1-D")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(yhat))):
        raise ValueError("y_true or y_pred contain NaN or infinite values")
    z_value(confidence)
    err = np.abs(y - yhat)
    sq = err**2
    ape = err / np.maximum(np.abs(y), np.finfo(np.float64).eps)
    yc = y - y.mean()  # centred for a stable weighted total sum of squares
    yc2 = yc**2

    def r2(w: FloatArray) -> FloatArray:
        sst = w @ yc2 - (w @ yc) ** 2 / n
        return 1.0 - safe_ratio(w @ sq, np.where(sst > 1e-12 * (w @ yc2), sst, 0.0))

    stats: dict[str, Statistic] = {
        "mae": lambda w: (w @ err) / n,
        "rmse": lambda w: np.sqrt((w @ sq) / n),
        "mape": lambda w: (w @ ape) / n,
        "r2": r2,
    }
    metrics: dict[str, Metric] = {}
    _add_bootstrap(metrics, stats, n, confidence, resamples, seed)
    return Performance("regression", n, confidence, metrics, resamples=resamples, seed=seed)


# --- degradation ------------------------------------------------------------------------


def degraded(
    current: Performance, reference: Performance, *, metric: str, tolerance: float
) -> Degradation:
    """Whether ``current``'s ``metric`` is worse than ``reference``'s by more than
    ``tolerance`` and significantly so at the window's size (see :class:`Degradation`)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    cur, ref = current[metric], reference[metric]
    higher = cur.higher_is_better
    sign = 1.0 if higher else -1.0
    # half-widths on the sides facing each other: the window's better side, the
    # reference's worse side; a reference without an interval counts as exact
    cur_half = cur.upper - cur.value if higher else cur.value - cur.lower
    ref_half = ref.value - ref.lower if higher else ref.upper - ref.value
    se_cur = max(cur_half, 0.0) / z_value(current.confidence)
    se_ref = 0.0 if math.isnan(ref_half) else max(ref_half, 0.0) / z_value(reference.confidence)
    margin = z_value(current.confidence) * math.hypot(se_cur, se_ref)
    threshold = ref.value - sign * max(tolerance, margin)
    worse_by = sign * (ref.value - cur.value)
    flag = not math.isnan(margin) and sign * (threshold - cur.value) > 0
    return Degradation(
        metric=metric,
        higher_is_better=higher,
        reference=ref.value,
        current=cur.value,
        tolerance=tolerance,
        margin=margin,
        threshold=threshold,
        worse_by=worse_by,
        degraded=bool(flag),
        n=current.n,
        confidence=current.confidence,
    )


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "Degradation",
    "Metric",
    "Performance",
    "classification_performance",
    "degraded",
    "delong_roc_auc",
    "jsonable",
    "regression_performance",
    "wilson_interval",
    "z_value",
]
