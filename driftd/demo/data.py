"""Seeded demo domain: card transactions with a fraud label.

``make_reference`` draws the training table, ``train_baseline`` fits the champion
model on it, and ``ProductionStream`` replays production hour by hour: prediction
records in the driftd log contract, labels that arrive hours later, and a few
malformed lines. From ``drift_at_hour`` on the stream drifts in a known way: the
covariates in ``DRIFTED_FEATURES`` shift and fraud follows ``CONCEPT_DRIFT``.

Everything is a function of the seed and the hour: no global RNG, no clock, no I/O
except ``write_jsonl``. ``hour`` is the cardholder's local hour of day, drawn from the
same daily profile in every batch and not from the UTC timestamp, so the stream is
stationary before the drift whatever the monitoring window.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

FEATURES: dict[str, str] = {
    "amount": "numeric",
    "hour": "numeric",
    "account_age_days": "numeric",
    "n_tx_24h": "numeric",
    "distance_km": "numeric",
    "customer_age": "numeric",
    "merchant_category": "categorical",
    "country": "categorical",
    "card_present": "boolean",
    "is_new_device": "boolean",
}
TARGET = "is_fraud"

_CATEGORIES = ("grocery", "electronics", "travel", "fuel", "online", "restaurant")
_CATEGORY_P = np.array([0.30, 0.08, 0.07, 0.15, 0.22, 0.18])
_AMOUNT_LOG_OFFSET = np.array([0.0, 1.0, 1.2, 0.2, 0.3, -0.2])
_ONLINE = _CATEGORIES.index("online")
_COUNTRIES = ("DE", "FR", "GB", "NL", "US", "ES", "IT")
_COUNTRY_P = np.array([0.30, 0.18, 0.15, 0.10, 0.10, 0.09, 0.08])
# fmt: off
_HOUR_WEIGHTS = np.array(
    [1.0, 0.7, 0.5, 0.4, 0.4, 0.6, 1.2, 2.2, 3.2, 3.8, 4.2, 4.6,
     5.2, 5.0, 4.6, 4.4, 4.6, 5.0, 5.4, 5.2, 4.4, 3.4, 2.4, 1.6]
)
# fmt: on
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()

AMOUNT_SCALE = 1.6
DRIFT_ONLINE_SHARE = 0.45
NEW_COUNTRY = "BR"
NEW_COUNTRY_SHARE = 0.05
DRIFTED_FEATURES: dict[str, str] = {
    "amount": f"amounts scaled up {AMOUNT_SCALE}x",
    "merchant_category": f"online share {_CATEGORY_P[_ONLINE]:.0%} -> {DRIFT_ONLINE_SHARE:.0%}",
    "country": f"new country {NEW_COUNTRY!r} at {NEW_COUNTRY_SHARE:.0%}",
    "card_present": "card-present share falls with the online share (online is never card-present)",
}
CONCEPT_DRIFT = (
    "fraud moves to card-present transactions at fuel stations, most of all at night "
    "(22:00-05:59); the training pattern (large online amounts on new devices far from "
    "home) keeps 30% of its weight"
)

_REFERENCE_TAG = 1
_STREAM_TAG = 2
_MALFORMED_TAG = 3
_HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _category_p(drifted: bool) -> np.ndarray:
    if not drifted:
        return _CATEGORY_P
    others = np.delete(_CATEGORY_P, _ONLINE)
    return np.insert(others / others.sum() * (1 - DRIFT_ONLINE_SHARE), _ONLINE, DRIFT_ONLINE_SHARE)


def _draw_features(rng: np.random.Generator, n: int, *, drifted: bool) -> pd.DataFrame:
    category = rng.choice(len(_CATEGORIES), size=n, p=_category_p(drifted))
    countries = np.array(_COUNTRIES + (NEW_COUNTRY,), dtype=object)
    country_p = (
        np.append(_COUNTRY_P * (1 - NEW_COUNTRY_SHARE), NEW_COUNTRY_SHARE)
        if drifted
        else np.append(_COUNTRY_P, 0.0)
    )
    country = countries[rng.choice(len(countries), size=n, p=country_p)]
    amount = np.exp(rng.normal(3.6 + _AMOUNT_LOG_OFFSET[category], 1.0))
    if drifted:
        amount *= AMOUNT_SCALE
    hour = rng.choice(24, size=n, p=_HOUR_P)
    account_age_days = np.round(rng.gamma(1.5, 500.0, size=n), 1)
    n_tx_24h = rng.poisson(2.5, size=n)
    distance_km = np.round(rng.lognormal(2.0, 1.2, size=n), 2)
    customer_age = np.round(np.clip(rng.normal(43.0, 14.0, size=n), 18.0, 90.0))
    customer_age[rng.random(n) < 0.02] = np.nan
    card_present = (category != _ONLINE) & (rng.random(n) < 0.93)
    is_new_device = rng.random(n) < 0.07
    return pd.DataFrame(
        {
            "amount": np.maximum(np.round(amount, 2), 0.01),
            "hour": hour.astype(np.int64),
            "account_age_days": account_age_days,
            "n_tx_24h": n_tx_24h.astype(np.int64),
            "distance_km": np.maximum(distance_km, 0.01),
            "customer_age": customer_age,
            "merchant_category": np.array(_CATEGORIES, dtype=object)[category],
            "country": country,
            "card_present": card_present,
            "is_new_device": is_new_device,
        }
    )


def _training_pattern(f: pd.DataFrame) -> np.ndarray:
    """Fraud log-odds contributions of the pattern the baseline learns."""
    category = f["merchant_category"].to_numpy()
    return (
        1.5 * (np.log(f["amount"].to_numpy()) - 3.8)
        + 2.7 * f["is_new_device"].to_numpy()
        + 0.9 * (np.log(f["distance_km"].to_numpy()) - 2.0)
        + 1.35 * (category == "online")
        + 0.9 * (category == "electronics")
        + 0.75 * (category == "travel")
        - 0.9 * (np.log1p(f["account_age_days"].to_numpy()) - 6.3)
        + 0.3 * (f["n_tx_24h"].to_numpy() - 2.5)
        + 0.75 * (f["hour"].to_numpy() < 6)
    )


def _draw_fraud(rng: np.random.Generator, f: pd.DataFrame, *, drifted: bool) -> np.ndarray:
    if drifted:
        hour = f["hour"].to_numpy()
        night = (hour >= 22) | (hour < 6)
        fuel = f["card_present"].to_numpy() & (f["merchant_category"] == "fuel").to_numpy()
        logit = -4.8 + 0.3 * _training_pattern(f) + 3.5 * fuel + 2.0 * (fuel & night)
    else:
        logit = -5.8 + _training_pattern(f)
    return (rng.random(len(f)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)


def make_reference(n: int = 20_000, *, seed: int = 0) -> pd.DataFrame:
    """Training table: the ``FEATURES`` columns and ``TARGET`` (0/1), about 5% positives."""
    rng = np.random.default_rng([seed, _REFERENCE_TAG])
    features = _draw_features(rng, n, drifted=False)
    features[TARGET] = _draw_fraud(rng, features, drifted=False)
    return features


def _as_float(x: Any) -> np.ndarray:
    return pd.DataFrame(x).astype(float).to_numpy()


def train_baseline(reference: pd.DataFrame, *, seed: int = 0) -> Pipeline:
    """Fit the champion model (one-hot + imputation + gradient boosting) on all of ``reference``."""
    numeric = [name for name, kind in FEATURES.items() if kind != "categorical"]
    categorical = [name for name, kind in FEATURES.items() if kind == "categorical"]
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    FunctionTransformer(_as_float, feature_names_out="one-to-one"),
                    SimpleImputer(strategy="median"),
                ),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ]
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=200,
        max_leaf_nodes=15,
        early_stopping=False,
        random_state=seed,
    )
    model = Pipeline([("preprocess", preprocess), ("classifier", classifier)])
    return model.fit(reference[list(FEATURES)], reference[TARGET].to_numpy())


def score(model: Any, features: pd.DataFrame) -> np.ndarray:
    """Positive-class probabilities of ``model`` for the ``FEATURES`` columns of ``features``."""
    return np.asarray(model.predict_proba(features[list(FEATURES)])[:, 1], dtype=float)


def _feature_records(f: pd.DataFrame) -> list[dict[str, Any]]:
    columns = {name: f[name].tolist() for name in FEATURES}
    columns["customer_age"] = [None if v != v else int(v) for v in columns["customer_age"]]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@dataclass(frozen=True)
class HourBatch:
    """What production emits in one hour: predictions, labels arriving now, bad lines."""

    hour: int
    predictions: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class Served:
    """What served each request of a batch: its A/B arm, the model version, the score."""

    variants: list[str]
    versions: list[str]
    scores: np.ndarray


Server = Callable[[list[str], pd.DataFrame], Served]


@dataclass(frozen=True)
class _Draw:
    features: pd.DataFrame
    truth: np.ndarray
    offset_ms: np.ndarray
    delay_ms: np.ndarray


class ProductionStream:
    """Hour-by-hour production traffic for ``model``, drifting from ``drift_at_hour`` on
    (until ``drift_until_hour``, when given: the upstream change is rolled back).

    Hour ``h`` covers ``[start + h hours, start + h + 1 hours)``. Its predictions and
    malformed lines depend only on ``(seed, h)``; its labels are those of hours ``<= h``
    whose arrival (prediction ts + a delay in ``label_delay_hours``) falls in hour ``h``.
    Predictions are scored by ``model`` unless a ``server`` is given, which then decides
    per request which model serves it (the demo's champion and challenger): the features
    and the truth stay the same whoever serves.
    """

    def __init__(
        self,
        *,
        model: Any,
        start: datetime,
        rows_per_hour: int = 500,
        drift_at_hour: int = 72,
        drift_until_hour: int | None = None,
        seed: int = 0,
        model_version: str = "1",
        malformed_rate: float = 0.002,
        label_delay_hours: tuple[int, int] = (6, 48),
        server: Server | None = None,
    ) -> None:
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError(f"start must be timezone-aware UTC, got {start!r}")
        if rows_per_hour < 1:
            raise ValueError(f"rows_per_hour must be >= 1, got {rows_per_hour!r}")
        if not 0.0 <= malformed_rate <= 1.0:
            raise ValueError(f"malformed_rate must be in [0, 1], got {malformed_rate!r}")
        low, high = label_delay_hours
        if not 0 <= low <= high:
            raise ValueError(
                f"label_delay_hours must be 0 <= low <= high, got {label_delay_hours!r}"
            )
        self.model = model
        self.start = start
        self.rows_per_hour = rows_per_hour
        self.drift_at_hour = drift_at_hour
        self.drift_until_hour = drift_until_hour
        self.seed = seed
        self.model_version = model_version
        self.malformed_rate = malformed_rate
        self.label_delay_hours = label_delay_hours
        self.server = server
        self._start_ms = (start - _EPOCH) // timedelta(milliseconds=1)
        self._draws: OrderedDict[int, _Draw] = OrderedDict()

    def hour(self, h: int) -> HourBatch:
        """The batch of hour ``h`` (``h >= 0``), identical whatever the call order."""
        if h < 0:
            raise ValueError(f"hour must be >= 0, got {h!r}")
        draw = self._draw(h)
        ids = [f"tx-{h}-{i}" for i in range(len(draw.features))]
        served = self.serve(ids, draw.features)
        predictions = [
            {
                "id": request_id,
                "ts": self._ts(h * _HOUR_MS + int(offset)),
                "model_version": version,
                "variant": variant,
                "features": features,
                "prediction": int(s >= 0.5),
                "score": float(s),
            }
            for request_id, offset, features, variant, version, s in zip(
                ids,
                draw.offset_ms,
                _feature_records(draw.features),
                served.variants,
                served.versions,
                served.scores,
                strict=True,
            )
        ]
        return HourBatch(
            hour=h,
            predictions=predictions,
            labels=self._labels_arriving(h),
            malformed=self._malformed(h, predictions),
        )

    def serve(self, ids: list[str], features: pd.DataFrame) -> Served:
        """Score one hour's requests: the stream's own ``model`` as version
        ``model_version``, or the ``server`` given (the demo's champion/challenger)."""
        if self.server is not None:
            return self.server(ids, features)
        n = len(ids)
        return Served(["champion"] * n, [self.model_version] * n, score(self.model, features))

    def _draw(self, h: int) -> _Draw:
        """Model-free part of hour ``h``: features, truth, ts offsets and label delays."""
        if h in self._draws:
            self._draws.move_to_end(h)
            return self._draws[h]
        rng = np.random.default_rng([self.seed, _STREAM_TAG, h])
        drifted = self.drift_at_hour <= h and (
            self.drift_until_hour is None or h < self.drift_until_hour
        )
        features = _draw_features(rng, self.rows_per_hour, drifted=drifted)
        truth = _draw_fraud(rng, features, drifted=drifted)
        offset_ms = np.sort(rng.integers(0, _HOUR_MS, size=self.rows_per_hour))
        low, high = self.label_delay_hours
        delay_ms = rng.integers(
            low * _HOUR_MS, high * _HOUR_MS, size=self.rows_per_hour, endpoint=True
        )
        draw = _Draw(features, truth, offset_ms, delay_ms)
        self._draws[h] = draw
        if len(self._draws) > high + 4:
            self._draws.popitem(last=False)
        return draw

    def _labels_arriving(self, h: int) -> list[dict[str, Any]]:
        arriving: list[tuple[int, int, int, int]] = []
        for g in range(max(0, h - self.label_delay_hours[1] - 1), h + 1):
            draw = self._draw(g)
            arrival_ms = g * _HOUR_MS + draw.offset_ms + draw.delay_ms
            for i in np.flatnonzero(arrival_ms // _HOUR_MS == h):
                arriving.append((int(arrival_ms[i]), g, int(i), int(draw.truth[i])))
        arriving.sort()
        return [{"id": f"tx-{g}-{i}", "label": y, "ts": self._ts(ms)} for ms, g, i, y in arriving]

    def _malformed(self, h: int, predictions: list[dict[str, Any]]) -> list[bytes]:
        rng = np.random.default_rng([self.seed, _MALFORMED_TAG, h])
        lines = []
        for j in range(rng.binomial(self.rows_per_hour, self.malformed_rate)):
            template = predictions[int(rng.integers(len(predictions)))]
            record = {**template, "id": f"tx-{h}-bad{j}", "features": dict(template["features"])}
            lines.append(_MALFORMERS[int(rng.integers(len(_MALFORMERS)))](record))
        return lines

    def _ts(self, ms: int) -> str:
        """RFC 3339 UTC timestamp (millisecond precision, 'Z') ``ms`` after the start."""
        moment = _EPOCH + timedelta(milliseconds=self._start_ms + ms)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _dumps(record: dict[str, Any], *, allow_nan: bool = False) -> bytes:
    return json.dumps(record, separators=(",", ":"), allow_nan=allow_nan).encode()


def _truncated(record: dict[str, Any]) -> bytes:
    line = _dumps(record)
    return line[: len(line) // 2]


def _missing_id(record: dict[str, Any]) -> bytes:
    del record["id"]
    return _dumps(record)


def _unparseable_ts(record: dict[str, Any]) -> bytes:
    moment = datetime.fromisoformat(record["ts"])
    record["ts"] = moment.strftime("%d/%m/%Y %H:%M:%S")
    return _dumps(record)


def _nan_amount(record: dict[str, Any]) -> bytes:
    record["features"]["amount"] = float("nan")
    return _dumps(record, allow_nan=True)


def _string_score(record: dict[str, Any]) -> bytes:
    record["score"] = f"{record['score']:.2f}".replace(".", ",")
    return _dumps(record)


def _invalid_utf8(record: dict[str, Any]) -> bytes:
    record["features"]["merchant_category"] = "caf@"
    return _dumps(record).replace(b"caf@", b"caf\xe9")


_MALFORMERS = (_truncated, _missing_id, _unparseable_ts, _nan_amount, _string_score, _invalid_utf8)


def write_jsonl(
    path: str | os.PathLike[str], records: Iterable[dict[str, Any] | bytes], *, append: bool = True
) -> int:
    """Write one line per record (compact JSON, bytes as-is), each ending in a newline.

    Returns the number of lines written.
    """
    count = 0
    with open(path, "ab" if append else "wb") as out:
        for record in records:
            line = record if isinstance(record, bytes) else _dumps(record)
            if b"\n" in line:
                raise ValueError(f"record {count} contains a newline: {line[:60]!r}")
            out.write(line + b"\n")
            count += 1
    return count
