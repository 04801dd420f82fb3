"""Multivariate drift: changes no single column shows, seen on whole rows.

Two detectors compare the window's row sample with the reference's row sample:

- **Domain classifier**: a gradient-boosted classifier learns to tell reference rows from
  window rows; its cross-validated ROC AUC is 0.5 when it cannot (no drift) and nears 1
  when it can. Under no drift the held-out AUC of each fold is a Mann-Whitney statistic
  with a known null spread, from which the threshold is set for the target false-alarm
  rate (a test measures the rate on stationary windows); as for columns, it is never below
  the practical default (0.55).
- **PCA reconstruction error**: a PCA fitted on the standardized reference keeps 90% of
  the variance; rows the reference's structure cannot explain reconstruct badly. The
  window's mean error is compared with the errors of same-size windows drawn from the
  reference (bootstrap), and the threshold is never below 1.1x the reference's mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from monitor.drift.compare import finite_dict
from monitor.records import FeatureType

MIN_ROWS = 50
TOP_CATEGORIES = 20


@dataclass(frozen=True)
class MultivariateDrift:
    detector: str
    score: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int

    def to_dict(self) -> dict[str, Any]:
        return finite_dict(self)


class Encoder:
    """Rows -> a numeric matrix: numbers standardized (missing -> 0 plus an indicator),
    categories one-hot over the reference's most frequent ones (the rest in 'other')."""

    def __init__(self, reference: Mapping[str, np.ndarray], schema: Mapping[str, FeatureType]):
        self.numeric = [n for n, k in schema.items() if k is FeatureType.NUMERIC and n in reference]
        self.categorical = [
            n for n, k in schema.items() if k is not FeatureType.NUMERIC and n in reference
        ]
        self.center = {}
        self.scale = {}
        for name in self.numeric:
            values = np.asarray(reference[name], dtype=np.float64)
            present = values[np.isfinite(values)]
            self.center[name] = float(np.median(present)) if present.size else 0.0
            spread = float(np.std(present)) if present.size else 1.0
            self.scale[name] = spread if spread > 0 else 1.0
        self.levels: dict[str, list[str]] = {}
        for name in self.categorical:
            texts, counts = np.unique(
                np.array([v for v in reference[name] if v is not None], dtype=object).astype(str),
                return_counts=True,
            )
            order = np.argsort(-counts, kind="stable")[:TOP_CATEGORIES]
            self.levels[name] = [str(texts[i]) for i in order]

    def transform(self, rows: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = []
        for name in self.numeric:
            values = np.asarray(rows[name], dtype=np.float64)
            missing = ~np.isfinite(values)
            scaled = (
                np.where(missing, self.center[name], values) - self.center[name]
            ) / self.scale[name]
            parts += [scaled, missing.astype(np.float64)]
        for name in self.categorical:
            values = np.array([None if v is None else str(v) for v in rows[name]], dtype=object)
            known = np.zeros(values.size, dtype=bool)
            for level in self.levels[name]:
                hit = values == level
                known |= hit
                parts.append(hit.astype(np.float64))
            parts.append((~known & (values != None)).astype(np.float64))  # noqa: E711
            parts.append((values == None).astype(np.float64))  # noqa: E711
        return np.column_stack(parts) if parts else np.zeros((0, 0))


def _rows(sample: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(sample.values()))) if sample else 0


def domain_classifier(
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    encoder: Encoder,
    *,
    false_alarm_rate: float = 0.01,
    default: float = 0.55,
    seed: int = 0,
) -> MultivariateDrift:
    """Cross-validated AUC of a classifier separating reference rows from window rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    n_ref, n_cur = _rows(reference), _rows(current)
    m = min(n_ref, n_cur)
    if m < MIN_ROWS:
        return MultivariateDrift("domain_classifier", math.nan, default, False, n_ref, n_cur)
    rng = np.random.default_rng(seed)
    x_ref = encoder.transform(reference)[rng.choice(n_ref, m, replace=False)]
    x_cur = encoder.transform(current)[rng.choice(n_cur, m, replace=False)]
    x = np.vstack([x_ref, x_cur])
    y = np.r_[np.zeros(m), np.ones(m)]
    aucs = []
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    # one thread: for samples this small OpenMP's start-up costs 15x the fit itself
    with threadpool_limits(1):
        for train, test in folds.split(x, y):
            model = HistGradientBoostingClassifier(
                max_iter=50, max_depth=4, early_stopping=False, random_state=seed
            )
            model.fit(x[train], y[train])
            aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    auc = float(np.mean(aucs))
    # null: each fold's AUC is a Mann-Whitney U/(n1 n2) with n1 = n2 = m/2. The folds'
    # models share data, so their AUCs are not independent: averaging them is not
    # credited with a smaller spread (measured: crediting it tripled the false alarms).
    half = m / 2
    sd = math.sqrt((2 * half + 1) / (12 * half * half))
    limit = 0.5 + float(stats.norm.ppf(1 - false_alarm_rate)) * sd
    threshold = max(limit, default)
    return MultivariateDrift("domain_classifier", auc, threshold, auc >= threshold, n_ref, n_cur)


class Reconstruction:
    """PCA reconstruction error of rows, fitted on the reference sample."""

    def __init__(
        self, reference: Mapping[str, np.ndarray], encoder: Encoder, *, variance: float = 0.9
    ):
        from sklearn.decomposition import PCA

        self.encoder = encoder
        self._limits: dict[tuple[int, float, int, int], float] = {}
        x = encoder.transform(reference)
        self.n_reference = x.shape[0]
        self.pca = (
            PCA(n_components=variance, svd_solver="covariance_eigh", random_state=0)
            if x.size
            else None
        )
        if self.pca is not None and x.shape[0] > x.shape[1] > 1:
            self.pca.fit(x)
            self.errors = self.error(reference)
        else:
            self.pca = None
            self.errors = np.zeros(0)

    def error(self, rows: Mapping[str, np.ndarray]) -> np.ndarray:
        assert self.pca is not None
        x = self.encoder.transform(rows)
        back = self.pca.inverse_transform(self.pca.transform(x))
        return np.sqrt(np.mean((x - back) ** 2, axis=1))

    def drift(
        self,
        current: Mapping[str, np.ndarray],
        *,
        false_alarm_rate: float = 0.01,
        rounds: int = 500,
        seed: int = 0,
    ) -> MultivariateDrift:
        n_cur = _rows(current)
        if self.pca is None or n_cur < MIN_ROWS:
            return MultivariateDrift(
                "pca_reconstruction", math.nan, math.nan, False, self.n_reference, n_cur
            )
        score = float(np.mean(self.error(current)))
        key = (n_cur, false_alarm_rate, rounds, seed)
        limit = self._limits.get(key)
        if limit is None:  # seeded by the window's size: the same for windows of one size
            rng = np.random.default_rng([seed, n_cur])
            picks = rng.integers(0, self.errors.size, size=(rounds, n_cur))
            draws = self.errors[picks].mean(axis=1)
            limit = self._limits[key] = float(
                np.quantile(draws, 1 - false_alarm_rate, method="higher")
            )
        threshold = max(limit, 1.1 * float(np.mean(self.errors)))
        return MultivariateDrift(
            "pca_reconstruction", score, threshold, score >= threshold, self.n_reference, n_cur
        )
