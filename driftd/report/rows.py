"""Each stored prediction as the report sees it: ``q`` (the probability that it is
positive: its label where the label has arrived and matured, ``ts + label_delay <=
as_of``; else the CBPE-calibrated score; else unknown), whether the model flagged it,
and what missing it costs. Also the reference's rows in the same terms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftd.errors import ConfigError
from driftd.report.settings import BusinessSettings
from monitor.business import Costs

if TYPE_CHECKING:
    from driftd.app import App

REALIZED, ESTIMATED, UNKNOWN = "realized", "estimated", "unknown"


@dataclass(frozen=True)
class Inputs:
    """What the report needs of the configuration and the reference."""

    settings: BusinessSettings
    costs: Costs
    currency: str
    threshold: float
    positive: Any
    calibrate: Callable[[np.ndarray], np.ndarray] | None
    label_delay: timedelta
    confidence: float
    segments: list[str]


def inputs(app: App) -> Inputs:
    from monitor.records import FeatureType

    config = app.config
    settings = config.section("business")
    if not isinstance(settings, BusinessSettings):
        settings = BusinessSettings()
    perf = config.performance
    c = settings.cost
    costs = Costs(
        tp=c.tp,
        fp=perf.cost.fp if c.fp is None else c.fp,
        fn=perf.cost.fn if c.fn is None else c.fn,
        tn=c.tn,
    )
    engine = app.performance_engine
    estimator = engine.estimator
    segments = settings.segments
    unknown = [
        c for c in [*(segments or []), settings.value_column] if c and c not in app.reference.schema
    ]
    if unknown and app.reference.schema:
        raise ConfigError(
            f"business: no feature {', '.join(map(repr, unknown))} in the schema "
            f"(features: {', '.join(app.reference.schema)})"
        )
    if segments is None:
        kinds = (FeatureType.CATEGORICAL, FeatureType.BOOLEAN)
        segments = [name for name, kind in app.reference.schema.items() if kind in kinds]
    return Inputs(
        settings=settings,
        costs=costs,
        currency=settings.currency or perf.cost.currency,
        threshold=config.model.threshold,
        positive=engine.positive,
        calibrate=None if estimator is None else estimator.calibrate,
        label_delay=perf.label_delay,
        confidence=perf.confidence,
        segments=list(segments),
    )


def _normalized(values: pd.Series) -> list[Any]:
    from monitor.performance import normalize

    return [normalize(v) for v in values.tolist()]


def row_arrays(frame: pd.DataFrame, inp: Inputs, as_of: datetime) -> dict[str, np.ndarray]:
    """``q``, ``flagged``, ``miss_value`` and ``basis`` of each stored prediction."""
    n = len(frame)
    scores = frame["score"].to_numpy(dtype=float) if n else np.zeros(0)
    labels = _normalized(frame["label"])
    matured = np.array(
        [
            lab is not None and ts + inp.label_delay <= as_of
            for lab, ts in zip(labels, frame["ts"], strict=True)
        ],
        dtype=bool,
    )
    q = np.full(n, np.nan)
    q[matured] = [float(lab == inp.positive) for lab, m in zip(labels, matured, strict=True) if m]
    scored = ~matured & np.isfinite(scores)
    if inp.calibrate is not None and scored.any():
        q[scored] = inp.calibrate(scores[scored])
    basis = np.where(matured, REALIZED, np.where(np.isnan(q), UNKNOWN, ESTIMATED))
    predictions = _normalized(frame["prediction"])
    flagged = np.array(
        [
            p == inp.positive if p is not None else bool(s >= inp.threshold)
            for p, s in zip(predictions, scores, strict=True)
        ],
        dtype=bool,
    )
    column = inp.settings.value_column
    miss = None
    if column is not None and column in frame:
        miss = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return {
        "q": q,
        "flagged": flagged,
        "miss_value": miss if miss is not None else np.full(n, np.nan),
        "basis": basis,
        "scores": scores,
        "labelled": np.array([lab is not None for lab in labels], dtype=bool),
    }


def reference_rows(app: App, inp: Inputs) -> tuple[pd.DataFrame, dict[str, np.ndarray]] | None:
    """The reference's labelled rows with the model's outputs, as report rows."""
    spec = app.config.reference
    if spec is None or spec.target is None or not (spec.prediction_column or spec.score_column):
        return None
    frame = app.reference.frame()
    labels = _normalized(frame[spec.target])
    q = np.array([float(v == inp.positive) for v in labels])
    if spec.prediction_column:
        flagged = np.array([v == inp.positive for v in _normalized(frame[spec.prediction_column])])
    else:
        flagged = frame[spec.score_column].to_numpy(dtype=float) >= inp.threshold
    column = inp.settings.value_column
    miss = (
        pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        if column and column in frame
        else np.full(len(frame), np.nan)
    )
    return frame, {"q": q, "flagged": flagged.astype(bool), "miss_value": miss}


def calibration_check(
    rows: dict[str, np.ndarray], inp: Inputs, within: np.ndarray | None = None
) -> dict[str, Any] | None:
    """On realized rows with a score (of ``within``, default all): the misses that
    happened against those CBPE expected. A large gap means the scores no longer mean
    what they did on the reference (concept drift), so estimated figures are probably
    off the same way."""
    if inp.calibrate is None:
        return None
    mask = (rows["basis"] == REALIZED) & np.isfinite(rows["scores"]) & ~rows["flagged"]
    if within is not None:
        mask &= within
    if not mask.any():
        return None
    p = inp.calibrate(rows["scores"][mask])
    expected = float(p.sum())
    sd = float(np.sqrt((p * (1 - p)).sum()))
    realized = float(rows["q"][mask].sum())
    return {
        "rows": int(mask.sum()),
        "missed_realized": realized,
        "missed_expected": expected,
        "sd": sd,
        "gap_in_sd": (realized - expected) / sd if sd > 0 else None,
    }
