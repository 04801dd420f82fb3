"""Realized performance per window: point values equal scikit-learn's, the intervals are
the named methods (checked against scipy, a brute-force DeLong and an explicit bootstrap),
they cover the true value at their nominal rate, and the degradation rule needs both a
drop beyond the tolerance and a window large enough to tell it from noise."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from monitor.concept.performance import (
    Performance,
    classification_performance,
    degraded,
    delong_roc_auc,
    regression_performance,
    wilson_interval,
)

# -- seeded data -------------------------------------------------------------------------


def binary_data(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.6 * y - 0.8)))
    return y, np.round(scores, 3)  # rounded: ties, as real scores have


def multiclass_data(seed: int = 0, n: int = 3000, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    return y, proba


def regression_data(seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.gamma(3.0, 2.0, size=n)
    return y, y + rng.normal(0, 1.0, size=n)


# -- point values against scikit-learn ---------------------------------------------------


def test_binary_matches_sklearn() -> None:
    y, s = binary_data()
    perf = classification_performance(y, None, s, threshold=0.4)
    pred = (s >= 0.4).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, s),
        "average_precision": skm.average_precision_score(y, s),
        "log_loss": skm.log_loss(y, y_proba=s),
        "fnr": 1 - skm.recall_score(y, pred),
        "fpr": 1 - skm.recall_score(y, pred, pos_label=0),
    }
    assert set(perf.metrics) == set(expected)
    for name, value in expected.items():
        assert perf[name].value == pytest.approx(value, abs=1e-9), name
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert perf.confusion == ((tn, fp), (fn, tp))
    assert perf.task == "binary" and perf.threshold == 0.4 and perf.classes == (0, 1)
    methods = {name: m.method for name, m in perf.metrics.items()}
    assert methods == {
        "accuracy": "wilson",
        "precision": "wilson",
        "recall": "wilson",
        "fnr": "wilson",
        "fpr": "wilson",
        "roc_auc": "delong",
        "f1": "bootstrap",
        "average_precision": "bootstrap",
        "log_loss": "bootstrap",
    }
    assert perf["precision"].n == tp + fp and perf["fpr"].n == fp + tn


def test_binary_served_predictions_with_string_labels() -> None:
    y, s = binary_data(1, 500)
    labels = np.array(["ok", "fraud"])
    served = np.where(s >= 0.7, "fraud", "ok")  # what the model served, not score >= 0.5
    perf = classification_performance(labels[1 - y], served, s, classes=("ok", "fraud"))
    truth = labels[1 - y]
    assert perf.threshold is None
    assert perf["recall"].value == pytest.approx(
        skm.recall_score(truth, served, pos_label="fraud"), abs=1e-9
    )
    assert perf["roc_auc"].value == pytest.approx(skm.roc_auc_score(truth == "fraud", s), abs=1e-9)
    json.dumps(perf.to_dict(), allow_nan=False)
    without_scores = classification_performance(y, (s >= 0.5).astype(int))
    assert set(without_scores.metrics) == {"accuracy", "precision", "recall", "f1", "fnr", "fpr"}


def test_multiclass_matches_sklearn() -> None:
    y, proba = multiclass_data()
    pred = proba.argmax(axis=1)
    perf = classification_performance(y, pred, proba)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro"),
        "recall": skm.recall_score(y, pred, average="macro"),
        "f1": skm.f1_score(y, pred, average="macro"),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr"),
        "average_precision": skm.average_precision_score(
            label_binarize(y, classes=[0, 1, 2, 3]), proba
        ),
        "log_loss": skm.log_loss(y, y_proba=proba),
    }
    assert set(perf.metrics) == set(expected)
    for name, value in expected.items():
        assert perf[name].value == pytest.approx(value, abs=1e-9), name
    np.testing.assert_array_equal(perf.confusion, skm.confusion_matrix(y, pred))
    assert perf.task == "multiclass" and perf["accuracy"].method == "wilson"
    assert perf["roc_auc"].method == "bootstrap"


def test_multiclass_macro_over_classes_seen_like_sklearn() -> None:
    # class "c" is never predicted (precision counts 0), "d" never occurs (left out)
    y = np.array(["a", "b", "c", "a", "b", "c", "a", "a"])
    pred = np.array(["a", "b", "a", "a", "a", "b", "b", "a"])
    perf = classification_performance(y, pred, classes=("a", "b", "c", "d"))
    for name, fn in [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ]:
        assert perf[name].value == pytest.approx(
            fn(y, pred, average="macro", zero_division=0), abs=1e-12
        )
    assert perf.confusion[3] == (0, 0, 0, 0)


def test_regression_matches_sklearn() -> None:
    y, yhat = regression_data()
    perf = regression_performance(y, yhat)
    expected = {
        "mae": skm.mean_absolute_error(y, yhat),
        "rmse": skm.root_mean_squared_error(y, yhat),
        "mape": skm.mean_absolute_percentage_error(y, yhat),
        "r2": skm.r2_score(y, yhat),
    }
    for name, value in expected.items():
        assert perf[name].value == pytest.approx(value, abs=1e-9), name
        assert perf[name].method == "bootstrap"
        assert perf[name].lower < perf[name].value < perf[name].upper
    assert math.isnan(regression_performance([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])["r2"].value)


def test_golden_values_small_window() -> None:
    y = [0, 0, 1, 1, 1, 0, 1, 0, 1, 0]
    s = [0.1, 0.6, 0.8, 0.4, 0.9, 0.2, 0.55, 0.3, 0.7, 0.45]
    perf = classification_performance(y, None, s)
    # tp 4 (0.8, 0.9, 0.55, 0.7), fp 1 (0.6), fn 1 (0.4), tn 4
    assert perf.confusion == ((4, 1), (1, 4))
    assert perf["accuracy"].value == 0.8
    assert perf["precision"].value == 0.8 and perf["recall"].value == 0.8
    assert perf["fnr"].value == pytest.approx(0.2) and perf["fpr"].value == pytest.approx(0.2)
    assert perf["roc_auc"].value == pytest.approx(22 / 25)  # 0.4 < 0.45, 0.6; 0.55 < 0.6
    lo, hi = wilson_interval(8, 10)
    assert (perf["accuracy"].lower, perf["accuracy"].upper) == (lo, hi)
    assert lo == pytest.approx(0.4901624, abs=1e-7) and hi == pytest.approx(0.9433178, abs=1e-7)


# -- interval methods against independent computations ----------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 20), (170, 200), (200, 200), (412, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k: int, n: int, confidence: float) -> None:
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    lo, hi = wilson_interval(k, n, confidence)
    assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)


def test_delong_matches_brute_force() -> None:
    y, s = binary_data(2, 400)
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    variance = v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size
    auc, var = delong_roc_auc(y == 1, s)
    assert auc == pytest.approx(psi.mean(), abs=1e-12)
    assert var == pytest.approx(variance, rel=1e-10)
    perf = classification_performance(y, None, s, confidence=0.9)
    half = scipy.stats.norm.ppf(0.95) * math.sqrt(variance)
    assert perf["roc_auc"].lower == pytest.approx(auc - half, abs=1e-12)
    assert perf["roc_auc"].upper == pytest.approx(auc + half, abs=1e-12)


def explicit_bootstrap(
    n: int, resamples: int, seed: int, fn: Callable[[np.ndarray], float]
) -> tuple[float, float]:
    """The percentile interval from resampling rows explicitly (one block of indices)."""
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = [fn(i) for i in idx]
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def test_vectorised_bootstrap_equals_explicit_resampling() -> None:
    y, s = binary_data(3, 300)
    # binary rows are resampled in descending score order (no gather per resample)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    pred = (s >= 0.5).astype(int)
    perf = classification_performance(y, None, s, resamples=60, seed=9)
    checks = {
        "f1": lambda i: skm.f1_score(y[i], pred[i]),
        "average_precision": lambda i: skm.average_precision_score(y[i], s[i]),
        "log_loss": lambda i: skm.log_loss(y[i], y_proba=s[i], labels=[0, 1]),
    }
    for name, fn in checks.items():
        lo, hi = explicit_bootstrap(300, 60, 9, fn)
        assert perf[name].lower == pytest.approx(lo, abs=1e-9), name
        assert perf[name].upper == pytest.approx(hi, abs=1e-9), name
    yr, yhat = regression_data(4, 300)
    reg = regression_performance(yr, yhat, resamples=60, seed=9)
    for name, fn in {
        "mae": lambda i: skm.mean_absolute_error(yr[i], yhat[i]),
        "rmse": lambda i: skm.root_mean_squared_error(yr[i], yhat[i]),
        "mape": lambda i: skm.mean_absolute_percentage_error(yr[i], yhat[i]),
        "r2": lambda i: skm.r2_score(yr[i], yhat[i]),
    }.items():
        lo, hi = explicit_bootstrap(300, 60, 9, fn)
        assert (reg[name].lower, reg[name].upper) == pytest.approx((lo, hi), abs=1e-9), name
    ym, proba = multiclass_data(5, 300, 3)
    mc = classification_performance(ym, proba.argmax(axis=1), proba, resamples=60, seed=9)
    lo, hi = explicit_bootstrap(
        300, 60, 9, lambda i: skm.roc_auc_score(ym[i], proba[i], multi_class="ovr")
    )
    assert (mc["roc_auc"].lower, mc["roc_auc"].upper) == pytest.approx((lo, hi), abs=1e-9)


def test_bootstrap_is_seeded() -> None:
    y, s = binary_data(6, 500)
    a = classification_performance(y, None, s, seed=1)
    assert a == classification_performance(y, None, s, seed=1)
    assert a["f1"].lower != classification_performance(y, None, s, seed=2)["f1"].lower
    assert a.resamples == 200 and a.to_dict()["seed"] == 1


# -- coverage by simulation --------------------------------------------------------------

# y ~ Bernoulli(0.4); served prediction: P(1 | y=1) = 0.8, P(1 | y=0) = 0.15
PREVALENCE, TPR, FPR = 0.4, 0.8, 0.15
TRUE = {
    "accuracy": PREVALENCE * TPR + (1 - PREVALENCE) * (1 - FPR),
    "precision": PREVALENCE * TPR / (PREVALENCE * TPR + (1 - PREVALENCE) * FPR),
    "recall": TPR,
    "fnr": 1 - TPR,
    "fpr": FPR,
}
TRUE["f1"] = 2 * PREVALENCE * TPR / (PREVALENCE * (1 + TPR) + (1 - PREVALENCE) * FPR)


def coverage(replicates: int, n: int, names: list[str], resamples: int) -> dict[str, float]:
    rng = np.random.default_rng(2024)
    hits = dict.fromkeys(names, 0)
    for _ in range(replicates):
        y = rng.random(n) < PREVALENCE
        pred = np.where(y, rng.random(n) < TPR, rng.random(n) < FPR)
        perf = classification_performance(y.astype(int), pred.astype(int), resamples=resamples)
        for name in names:
            hits[name] += perf[name].lower <= TRUE[name] <= perf[name].upper
    return {name: h / replicates for name, h in hits.items()}


def test_wilson_intervals_cover_at_nominal_rate() -> None:
    rates = coverage(1000, 300, ["accuracy", "precision", "recall", "fnr", "fpr"], resamples=1)
    print(f"\n95% Wilson coverage over 1000 windows of 300: {rates}")
    for name, rate in rates.items():
        assert 0.93 <= rate <= 0.97, (name, rate)


def test_delong_interval_covers_at_nominal_rate() -> None:
    # binormal scores: negatives N(0, 1), positives N(1.2, 1); AUC = Phi(1.2 / sqrt 2)
    true_auc = scipy.stats.norm.cdf(1.2 / math.sqrt(2))
    rng = np.random.default_rng(7)
    hits, replicates = 0, 1000
    for _ in range(replicates):
        y = rng.random(200) < 0.5
        s = rng.normal(size=200) + 1.2 * y
        auc = classification_performance(y.astype(int), None, s, resamples=1)["roc_auc"]
        hits += auc.lower <= true_auc <= auc.upper
    print(f"\n95% DeLong coverage over {replicates} windows of 200: {hits / replicates}")
    assert 0.93 <= hits / replicates <= 0.97


def test_bootstrap_intervals_roughly_cover() -> None:
    """Percentile bootstrap intervals are approximate; check they are not badly off."""
    f1 = coverage(200, 400, ["f1"], resamples=200)["f1"]
    rng = np.random.default_rng(8)
    hits = 0
    for _ in range(200):
        err = rng.normal(size=400)
        mae = regression_performance(np.zeros(400), err)["mae"]
        hits += mae.lower <= math.sqrt(2 / math.pi) <= mae.upper
    print(f"\n95% bootstrap coverage: F1 {f1}, MAE {hits / 200}")
    assert 0.88 <= f1 <= 0.99 and 0.88 <= hits / 200 <= 0.99


# -- degradation -------------------------------------------------------------------------


def window(correct: int, n: int) -> Performance:
    """A binary window of all-positive rows, ``correct`` of them predicted positive."""
    pred = np.zeros(n, dtype=int)
    pred[:correct] = 1
    return classification_performance(np.ones(n, dtype=int), pred, resamples=10)


def test_no_alarm_on_small_same_distribution_windows() -> None:
    rng = np.random.default_rng(10)
    reference = window(int(0.85 * 50_000), 50_000)
    flagged = [
        degraded(
            window(int(rng.binomial(150, 0.85)), 150), reference, metric="recall", tolerance=0.02
        )
        for _ in range(300)
    ]
    assert sum(d.degraded for d in flagged) / 300 <= 0.03  # one-sided level 2.5%
    # the same observed drop: noise at n = 100, a real degradation at n = 20,000
    small = degraded(window(78, 100), reference, metric="recall", tolerance=0.02)
    large = degraded(window(15_600, 20_000), reference, metric="recall", tolerance=0.02)
    assert not small.degraded and small.margin > 0.07 and small.threshold < 0.78
    assert large.degraded and large.margin < 0.02 and large.threshold == pytest.approx(0.83)
    assert large.worse_by == pytest.approx(0.07)
    json.dumps(large.to_dict(), allow_nan=False)


def test_tolerance_ignores_significant_but_small_drops() -> None:
    reference = window(85_000, 100_000)
    d = degraded(window(84_000, 100_000), reference, metric="recall", tolerance=0.02)
    assert d.margin < 0.01 < d.worse_by < 0.02 and not d.degraded
    assert degraded(window(84_000, 100_000), reference, metric="recall", tolerance=0.0).degraded


def test_lower_is_better_metrics() -> None:
    reference = window(85_000, 100_000)
    worse = degraded(window(16_000, 20_000), reference, metric="fnr", tolerance=0.02)
    assert not worse.higher_is_better and worse.degraded
    assert worse.threshold == pytest.approx(0.17) and worse.worse_by == pytest.approx(0.05)
    better = degraded(window(18_000, 20_000), reference, metric="fnr", tolerance=0.0)
    assert not better.degraded and better.worse_by < 0
    rng = np.random.default_rng(12)
    ref = regression_performance(np.zeros(20_000), rng.normal(size=20_000))
    same = regression_performance(np.zeros(200), rng.normal(size=200))
    big = regression_performance(np.zeros(20_000), 1.2 * rng.normal(size=20_000))
    assert not degraded(same, ref, metric="mae", tolerance=0.05).degraded
    assert degraded(big, ref, metric="mae", tolerance=0.05).degraded
    assert degraded(big, ref, metric="rmse", tolerance=0.05).degraded
    assert not degraded(ref, big, metric="mae", tolerance=0.0).degraded


def test_log_loss_degradation() -> None:
    y, s = binary_data(13, 20_000)
    reference = classification_performance(y, None, s, resamples=50)
    y2, s2 = binary_data(14, 20_000)
    blurred = classification_performance(y2, None, 0.5 + 0.5 * (s2 - 0.5) * 0.4, resamples=50)
    d = degraded(blurred, reference, metric="log_loss", tolerance=0.01)
    assert d.degraded and d.current > d.threshold > d.reference


# -- validation and serialisation --------------------------------------------------------


def test_undefined_metrics_are_nan_and_none_in_json() -> None:
    perf = classification_performance([0, 0, 1, 0], [0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4])
    assert math.isnan(perf["precision"].value) and math.isnan(perf["precision"].lower)
    out = json.loads(json.dumps(perf.to_dict(), allow_nan=False))
    assert out["metrics"]["precision"]["value"] is None
    assert out["metrics"]["log_loss"]["higher_is_better"] is False
    single = classification_performance([1, 1], [1, 0], [0.9, 0.2])
    assert math.isnan(single["roc_auc"].value) and single.classes == (0, 1)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([], []), {}, "no rows"),
        (([0, 1], [0]), {}, "y_pred has 1 rows"),
        (([0, 1], None, [0.2, math.nan]), {}, "NaN"),
        (([0, 1, 2], None), {}, "may be None only"),
        (([0, 1, 2], [0, 1, 2], [0.1, 0.2, 0.3]), {}, "two classes"),
        (([0, 1], [0, 1]), {"confidence": 1.5}, "confidence"),
        ((["x", "x"], ["x", "x"]), {}, "pass classes"),
    ],
)
def test_bad_inputs_are_named(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_performance(*args, **kwargs)


def test_missing_metric_is_named() -> None:
    perf = regression_performance([1.0, 2.0, 3.0], [1.0, 2.5, 2.0])
    with pytest.raises(KeyError, match="no metric 'roc_auc' in this regression"):
        degraded(perf, perf, metric="roc_auc", tolerance=0.0)
