"""Label-free performance estimation of a binary classifier: confidence-based performance
estimation (CBPE, as NannyML does it), for windows whose labels have not arrived yet.

:class:`CBPE` is fitted on a labelled reference (the model's scores and the true labels
of data it was not trained on). It learns

- a calibrator: isotonic regression of the labels on the scores, so that a calibrated
  score is the probability that the row is positive (``calibration="none"`` trusts the
  scores as they are);
- reference windows: the reference cut, in its order, into consecutive chunks of
  ``chunk_size`` rows (by default 10 chunks, NannyML's default), and for every metric the
  mean and standard deviation of its *realized* value across those chunks.

For a window of scores, predictions are ``score >= threshold`` and the calibrated
probability ``p_i`` of each row gives the expected confusion matrix: ``E[TP] = sum p_i``
over predicted positives, ``E[FP] = sum (1 - p_i)`` over predicted positives, and so on.
Accuracy, precision, recall, F1 and the business cost are those of the expected counts,
as in NannyML. ROC AUC is NannyML's estimate: rows sorted by score, expected TPR and FPR
at every distinct score from the cumulative ``p_i`` and ``1 - p_i``, and the trapezoid
under that curve (:func:`expected_roc_auc`).

Each estimate carries

- ``sampling_error``: the standard deviation of the metric across reference chunks,
  scaled to the window's size, ``std * sqrt(chunk_size / n)`` (a metric's sampling
  standard deviation shrinks as ``1 / sqrt(n)``); for counts and cost, which grow with
  ``n``, the per-row value's error times ``n``. It is the spread of the realized metric
  of a window of ``n`` rows like the reference, so it bounds how far the realized value
  of an unshifted window strays from its estimate;
  but never below the metric's own standard error at the window (:func:`own_errors`,
  from the calibrated probabilities, at least about one row's worth): a reference on
  which a near-perfect model never erred has zero spread across chunks, which would
  collapse the bands to a point and alert on rounding;
- alert thresholds: reference-chunk mean +- 3 sampling errors (NannyML's default
  ``StandardDeviationThreshold``, for windows of the window's size rather than the
  chunk's), clipped to the metric's range; ``alert`` when the estimate falls outside,
  which with the floor is never closer to the reference mean than 3 sampling errors.

CBPE assumes the calibrated scores stay right, i.e. that P(y | x) does not change: it
tracks the effect of covariate shift on performance, not concept drift. Under a concept
shift the estimate stays near the reference while the realized performance drops; that
is what the labelled performance (:mod:`monitor.concept.performance`) and the error-stream
detectors are for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from monitor.concept.performance import delong_roc_auc, jsonable

FloatArray = npt.NDArray[np.float64]

RATE_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")
COUNT_METRICS = ("tp", "fp", "tn", "fn")
DEFAULT_METRICS = RATE_METRICS + COUNT_METRICS
THRESHOLD_STDS = 3.0  # NannyML's StandardDeviationThreshold multipliers
DEFAULT_CHUNKS = 10  # reference chunks when chunk_size is None
FORMAT_VERSION = 1


def expected_roc_auc(scores: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """NannyML's estimated ROC AUC: the trapezoid under the ROC curve of expected TPR and
    FPR, with rows sorted by ``scores`` and ``probabilities`` the calibrated chance that
    each row is positive. Tied scores form one point of the curve. NaN when the expected
    positives or negatives are zero."""
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if s.size == 0:
        return math.nan
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    last = np.r_[s[1:] != s[:-1], True]
    tp = np.r_[0.0, np.cumsum(p)[last]]
    fp = np.r_[0.0, np.cumsum(1.0 - p)[last]]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return math.nan
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def _rates(
    tp: float, fp: float, fn: float, tn: float, cost: Mapping[str, float] | None
) -> dict[str, float]:
    """Metrics of a (possibly expected) confusion matrix; counts as shares of the rows."""
    n = tp + fp + fn + tn

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    out = {
        "accuracy": ratio(tp + tn, n),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "tp": ratio(tp, n),
        "fp": ratio(fp, n),
        "tn": ratio(tn, n),
        "fn": ratio(fn, n),
    }
    if cost is not None:
        total = sum(
            cost.get(k, 0.0) * v for k, v in (("tp", tp), ("fp", fp), ("fn", fn), ("tn", tn))
        )
        out["cost"] = ratio(total, n)
    return out


@dataclass(frozen=True)
class EstimatedMetric:
    name: str
    value: float  # counts and cost: totals over the window's rows
    sampling_error: float
    reference: float  # the reference-chunk mean, at the window's size
    lower_threshold: float
    upper_threshold: float
    alert: bool  # the estimate is outside the thresholds

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        return out


@dataclass(frozen=True)
class Estimate:
    n: int
    threshold: float
    calibration: str
    chunk_size: int  # rows per reference chunk behind the sampling errors and thresholds
    metrics: Mapping[str, EstimatedMetric]

    def __getitem__(self, name: str) -> EstimatedMetric:
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(f"no estimated metric {name!r}; have {sorted(self.metrics)}") from None

    @property
    def alerts(self) -> list[str]:
        return [name for name, m in self.metrics.items() if m.alert]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        return out


class CBPE:
    """Confidence-based performance estimation for a binary classifier (see the module
    docstring). ``cost`` maps confusion cells (``"fn"``, ``"fp"``, optionally ``"tp"``,
    ``"tn"``) to a cost per row; with it, ``"cost"`` (the window's expected total) is
    estimated too."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        calibration: Literal["isotonic", "none"] = "isotonic",
        chunk_size: int | None = None,
        metrics: Sequence[str] = DEFAULT_METRICS,
        cost: Mapping[str, float] | None = None,
    ) -> None:
        self.threshold = threshold
        self.calibration = calibration
        self.chunk_size = chunk_size
        self.metrics = metrics
        self.cost = cost

    # -- parameters ----------------------------------------------------------------------

    def _metric_names(self) -> tuple[str, ...]:
        names = tuple(self.metrics)
        unknown = [m for m in names if m not in DEFAULT_METRICS and m != "cost"]
        if unknown:
            raise ValueError(f"unknown CBPE metrics {unknown!r}; known: {list(DEFAULT_METRICS)}")
        if self.cost is not None and "cost" not in names:
            names += ("cost",)
        if "cost" in names and self.cost is None:
            raise ValueError("metric 'cost' needs cost={'fn': ..., 'fp': ...}")
        return names

    def _check_params(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if self.calibration not in ("isotonic", "none"):
            raise ValueError(f"calibration must be 'isotonic' or 'none', got {self.calibration!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {self.chunk_size!r}")
        if self.cost is not None:
            unknown = set(self.cost) - set(COUNT_METRICS)
            if unknown:
                raise ValueError(f"cost keys must be among tp, fp, tn, fn; got {sorted(unknown)}")
        self._metric_names()

    # -- fitting -------------------------------------------------------------------------

    def fit(self, reference_scores: npt.ArrayLike, reference_labels: npt.ArrayLike) -> CBPE:
        """Learn the calibrator and the reference-chunk spread of every metric."""
        self._check_params()
        s = _scores(reference_scores, "reference_scores")
        y = np.asarray(reference_labels)
        if y.shape != s.shape:
            raise ValueError(f"reference_labels have shape {y.shape}, scores {s.shape}")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("reference_labels must be 0/1 (or bool) for a binary model")
        y = y.astype(bool)
        if y.all() or not y.any():
            raise ValueError("the reference needs both positive and negative labels")
        n = s.size
        chunk = self.chunk_size if self.chunk_size is not None else n // DEFAULT_CHUNKS
        if chunk < 1 or n // chunk < 2:
            raise ValueError(
                f"a reference of {n} rows gives fewer than 2 chunks of {chunk} rows; "
                "lower chunk_size or add reference rows"
            )
        if self.calibration == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            iso.fit(s, y.astype(np.float64))
            self.calibrator_x_: FloatArray | None = np.asarray(iso.X_thresholds_, np.float64)
            self.calibrator_y_: FloatArray | None = np.asarray(iso.y_thresholds_, np.float64)
        else:
            self.calibrator_x_ = self.calibrator_y_ = None
        names = self._metric_names()
        values: dict[str, list[float]] = {m: [] for m in names}
        pred = s >= self.threshold
        for start in range(0, n - chunk + 1, chunk):
            yc, pc, sc = (
                y[start : start + chunk],
                pred[start : start + chunk],
                s[start : start + chunk],
            )
            tp = float(np.sum(yc & pc))
            fp = float(np.sum(~yc & pc))
            fn = float(np.sum(yc & ~pc))
            realized = _rates(tp, fp, fn, chunk - tp - fp - fn, self.cost)
            realized["roc_auc"] = delong_roc_auc(yc, sc)[0]
            for m in names:
                values[m].append(realized[m])
        self.chunk_size_ = chunk
        self.n_reference_ = n
        self.reference_values_ = {m: tuple(v) for m, v in values.items()}
        self.reference_mean_ = {m: _nan_stat(np.nanmean, v) for m, v in values.items()}
        self.reference_std_ = {m: _nan_stat(np.nanstd, v, ddof=1) for m, v in values.items()}
        return self

    def calibrate(self, scores: npt.ArrayLike) -> FloatArray:
        """The calibrated probability that each row is positive."""
        self._check_fitted()
        s = np.asarray(scores, dtype=np.float64)
        if self.calibrator_x_ is None or self.calibrator_y_ is None:
            return np.clip(s, 0.0, 1.0)
        return np.interp(s, self.calibrator_x_, self.calibrator_y_)

    # -- estimation ----------------------------------------------------------------------

    def estimate(self, scores: npt.ArrayLike) -> Estimate:
        """Estimated performance of one window of scores (no labels)."""
        self._check_fitted()
        s = _scores(scores, "scores")
        n = s.size
        p = self.calibrate(s)
        pred = s >= self.threshold
        values = _rates(
            float(p[pred].sum()),
            float((1.0 - p[pred]).sum()),
            float(p[~pred].sum()),
            float((1.0 - p[~pred]).sum()),
            self.cost,
        )
        values["roc_auc"] = expected_roc_auc(s, p)
        own = own_errors(s, p, pred, self.cost)
        metrics = {}
        for name in self.reference_mean_:
            scale = math.sqrt(self.chunk_size_ / n) if n else math.nan
            per_row = name in COUNT_METRICS or name == "cost"
            unit = float(n) if per_row else 1.0
            value = values[name] * unit
            # never below the metric's own standard error at this window (see own_errors)
            error = max(self.reference_std_[name] * scale, own.get(name, 0.0)) * unit
            centre = self.reference_mean_[name] * unit
            lower, upper = centre - THRESHOLD_STDS * error, centre + THRESHOLD_STDS * error
            if name != "cost":
                top = float(n) if per_row else 1.0
                lower, upper = max(lower, 0.0), min(upper, top)
            alert = not math.isnan(value) and (value < lower or value > upper)
            metrics[name] = EstimatedMetric(name, value, error, centre, lower, upper, alert)
        return Estimate(n, self.threshold, self.calibration, self.chunk_size_, metrics)

    # -- persistence ---------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "reference_mean_"):
            raise ValueError("this CBPE is not fitted yet; call fit(scores, labels) first")

    def get_params(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "calibration": self.calibration,
            "chunk_size": self.chunk_size,
            "metrics": list(self.metrics),
            "cost": None if self.cost is None else dict(self.cost),
        }

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON values (floats round-trip exactly)."""
        out: dict[str, Any] = {"version": FORMAT_VERSION, "params": self.get_params()}
        if hasattr(self, "reference_mean_"):
            x, y = self.calibrator_x_, self.calibrator_y_
            out["state"] = jsonable(
                {
                    "calibrator_x": None if x is None else x.tolist(),
                    "calibrator_y": None if y is None else y.tolist(),
                    "chunk_size": self.chunk_size_,
                    "n_reference": self.n_reference_,
                    "reference_values": self.reference_values_,
                    "reference_mean": self.reference_mean_,
                    "reference_std": self.reference_std_,
                }
            )
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CBPE:
        """A CBPE from :meth:`to_dict`'s output (fitted if that one was)."""
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"CBPE format version {data.get('version')!r} is not {FORMAT_VERSION}")
        params = dict(data["params"])
        params["metrics"] = tuple(params["metrics"])
        est = cls(**params)
        est._check_params()
        state = data.get("state")
        if state is not None:

            def arr(v: Any) -> FloatArray | None:
                return None if v is None else np.asarray(v, dtype=np.float64)

            def num(v: Any) -> float:
                return math.nan if v is None else float(v)

            est.calibrator_x_ = arr(state["calibrator_x"])
            est.calibrator_y_ = arr(state["calibrator_y"])
            est.chunk_size_ = int(state["chunk_size"])
            est.n_reference_ = int(state["n_reference"])
            est.reference_values_ = {
                m: tuple(num(v) for v in vs) for m, vs in state["reference_values"].items()
            }
            est.reference_mean_ = {m: num(v) for m, v in state["reference_mean"].items()}
            est.reference_std_ = {m: num(v) for m, v in state["reference_std"].items()}
        return est


def own_errors(
    scores: FloatArray,
    probabilities: FloatArray,
    predicted: npt.NDArray[np.bool_],
    cost: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The standard error of each metric's realized value in a window of these rows
    (per row for counts and cost), given the calibrated probability of each row.

    The realized confusion cells are sums of independent Bernoulli variables, so
    ``Var(TP) = sum p (1 - p)`` over the predicted positives and ``Var(FN)`` the same over
    the predicted negatives; ratios take the delta method, ROC AUC DeLong's variance with
    each row counted as positive with weight ``p`` and negative with ``1 - p``. To each
    variance one row's worth is added (four rows at one half, as Agresti and Coull's
    "plus four"), so the error of a perfect estimate over ``m`` rows is about ``1 / m``
    instead of zero: a difference the window cannot resolve."""
    n = probabilities.size
    if n == 0:
        return {}
    p = probabilities
    var_p = p * (1.0 - p)
    pos, neg = p[predicted], p[~predicted]
    tp, npp = float(pos.sum()), float(pos.size)
    fn = float(neg.sum())
    v_tp, v_fn = float(var_p[predicted].sum()) + 1.0, float(var_p[~predicted].sum()) + 1.0

    def ratio(d_tp: float, d_fn: float) -> float:
        return math.sqrt(d_tp * d_tp * v_tp + d_fn * d_fn * v_fn)

    positives = tp + fn
    out = {
        "accuracy": math.sqrt(v_tp + v_fn) / n,  # TP + TN = TP + (n - Npp - FN)
        "precision": math.sqrt(v_tp) / npp if npp else math.nan,
        # recall = TP / (TP + FN); F1 = 2 TP / (TP + Npp + FN)
        "recall": ratio(fn / positives**2, -tp / positives**2) if positives > 0 else math.nan,
    }
    d = tp + npp + fn
    out["f1"] = ratio(2.0 * (npp + fn) / d**2, -2.0 * tp / d**2) if d > 0 else math.nan
    for cell, v in (("tp", v_tp), ("fp", v_tp), ("fn", v_fn), ("tn", v_fn)):
        out[cell] = math.sqrt(v) / n
    if cost is not None:
        c = {k: cost.get(k, 0.0) for k in ("tp", "fp", "fn", "tn")}
        out["cost"] = ratio(c["tp"] - c["fp"], c["fn"] - c["tn"]) / n
    negatives = n - positives
    if positives > 0 and negatives > 0:
        out["roc_auc"] = math.sqrt(_auc_variance(scores, p) + 1.0 / (positives * negatives))
    return out


def _auc_variance(scores: FloatArray, p: FloatArray) -> float:
    """DeLong's variance of the ROC AUC with fractional class membership: a row is a
    positive of weight ``p`` and a negative of weight ``1 - p``."""
    order = np.argsort(scores, kind="stable")
    s, w_pos = scores[order], p[order]
    w_neg = 1.0 - w_pos
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group = np.cumsum(np.r_[False, s[1:] != s[:-1]])
    pos_g, neg_g = np.add.reduceat(w_pos, starts), np.add.reduceat(w_neg, starts)
    n_pos, n_neg = pos_g.sum(), neg_g.sum()
    neg_below = np.cumsum(neg_g) - neg_g  # negatives scored lower than the group
    pos_above = n_pos - np.cumsum(pos_g)
    v10 = ((neg_below + neg_g / 2) / n_neg)[group]  # each positive's share of negatives below
    v01 = ((pos_above + pos_g / 2) / n_pos)[group]
    a10 = float(np.sum(w_pos * v10) / n_pos)
    a01 = float(np.sum(w_neg * v01) / n_neg)
    return float(
        np.sum(w_pos * (v10 - a10) ** 2) / n_pos**2 + np.sum(w_neg * (v01 - a01) ** 2) / n_neg**2
    )


def _scores(values: npt.ArrayLike, what: str) -> FloatArray:
    s = np.asarray(values, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"{what} must be 1-D positive-class scores, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{what} contain NaN or infinite values")
    return s


def _nan_stat(fn: Any, values: list[float], **kwargs: Any) -> float:
    v = np.asarray(values, dtype=np.float64)
    if np.sum(~np.isnan(v)) < (2 if "ddof" in kwargs else 1):
        return math.nan
    return float(fn(v, **kwargs))


__all__ = [
    "CBPE",
    "DEFAULT_METRICS",
    "Estimate",
    "EstimatedMetric",
    "expected_roc_auc",
    "own_errors",
]
