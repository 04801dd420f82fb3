"""Shadow evaluation as the daemon runs it: the challenger scores the rows the champion
served, and once their labels mature the two are compared on the same rows.

Each run of the ``shadow`` job (:func:`evaluate`):

1. :func:`driftd.experiments.sync` reconciles the experiment with the aliases; only an
   experiment in phase ``shadow`` is worked on.
2. The rows the champion served since the experiment started that the challenger has
   not scored yet are scored in batches (features decoded by the reference schema) and
   stored in ``shadow_predictions``. A row the challenger fails on is stored without a
   score, so it is counted once and never tried again; one bad row does not fail its
   batch (the batch is scored again row by row).
3. The verdict (:func:`monitor.shadow.shadow_verdict`) is taken on the first
   ``min_sample`` matured labelled rows both models answered (matured: served more
   than ``performance.label_delay`` ago, as for the performance windows) and noted in
   the experiment's ``details["shadow"]`` every run.
4. A final verdict moves the experiment: **better** to the A/B test (``ab``); **worse**
   or **no evidence** to ``rejected``, and the ``challenger`` alias is cleared, so
   serving never sends it traffic. A challenger that fails on most rows is rejected
   for that. Each final verdict is an ``experiment`` event alert with its numbers.

Loading a model from MLflow takes seconds: the challenger is loaded only when there are
rows to score, and kept per process by version.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from driftd.config_base import Section
from driftd.config_base import duration as _duration
from monitor.records import FeatureType
from monitor.shadow import ShadowResult, ShadowSettings, Verdict, shadow_verdict
from storage.errors import InvalidOperationError, StorageError
from storage.experiment import ExperimentRepository, ShadowInput, ShadowScore
from storage.experiment_state import AB, REJECTED, SHADOW, Experiment, ExperimentStates

if TYPE_CHECKING:
    from alerts.signals import Evaluation
    from driftd.app import App
    from driftd.config import Config
    from driftd.jobs.base import JobResult
    from driftd.serve.models import ScoringModel
    from retrain.registry import Registry

logger = logging.getLogger(__name__)

BY = "driftd shadow"
# a challenger is judged on its failures once it was run on this many rows (or on
# min_sample, when smaller)
FAILURE_MIN_ROWS = 100

Metric = Literal["accuracy", "roc_auc", "cost"]


class ShadowConfig(Section):
    """The ``shadow:`` section. ``cost_fn``/``cost_fp`` are ``performance.cost``'s and
    the serving threshold is ``model.threshold``."""

    enabled: bool = True
    metric: Metric = "accuracy"  # the primary metric
    guards: list[Metric] = ["cost"]  # must not be significantly worse
    alpha: float = Field(0.05, gt=0, lt=0.5)
    min_sample: int = Field(2000, ge=1)  # the verdict is taken on the first N labelled rows
    max_duration: timedelta = timedelta(days=7)  # then the verdict is taken on what there is
    resamples: int = Field(1000, ge=100, le=100_000)  # paired bootstrap
    batch_size: int = Field(5000, ge=1, le=100_000)  # rows scored per model call
    # rejected when it fails (raises, or no probability) on more than this share of rows
    max_failed_share: float = Field(0.5, ge=0, le=1)

    _parse = field_validator("max_duration", mode="before")(lambda cls, v: _duration(v))

    @model_validator(mode="after")
    def _distinct(self) -> ShadowConfig:
        if self.metric in self.guards:
            raise ValueError(f"guards: {self.metric!r} is the primary metric already")
        if len(set(self.guards)) != len(self.guards):
            raise ValueError(f"guards: a metric is named twice in {self.guards}")
        return self

    def settings(self, config: Config) -> ShadowSettings:
        """The statistics' settings, with the model's threshold and costs (no costs
        configured: every error costs the same, as for the retraining gates)."""
        from monitor.ab.metrics import Costs

        cost = config.performance.cost
        return ShadowSettings(
            metric=self.metric,
            guards=tuple(self.guards),
            alpha=self.alpha,
            min_sample=self.min_sample,
            max_duration=self.max_duration,
            threshold=config.model.threshold,
            costs=Costs(false_negative=cost.fn or 1.0, false_positive=cost.fp or 1.0),
            resamples=self.resamples,
        )


def config_of(config: Config) -> ShadowConfig:
    section = config.section("shadow")
    return section if isinstance(section, ShadowConfig) else ShadowConfig()


# -- the job ------------------------------------------------------------------------------


def evaluate(app: App) -> JobResult:
    """One run of the shadow job (see the module docstring)."""
    from driftd.experiments import registry, sync
    from driftd.jobs.base import JobResult

    reg = registry(app)
    summary: dict[str, Any] = {"cleared": clear_rejected(app, reg)}
    exp = sync(app, reg)
    if exp is None or exp.phase != SHADOW:
        summary["experiment"] = None if exp is None else brief(exp)
        return JobResult(summary)
    cfg = config_of(app.config)
    repo = ExperimentRepository(app.store)
    scored, failed, error = score_new(app, reg, exp, cfg)
    total, failed_total = repo.shadow_counts(app.model, exp.challenger)
    now = app.clock()
    result, labelled = verdict(app, exp, cfg.settings(app.config), now)
    broken = total >= min(cfg.min_sample, FAILURE_MIN_ROWS) and (
        failed_total > cfg.max_failed_share * total
    )
    error = error or (exp.details.get("shadow") or {}).get("error")  # an earlier run's
    if broken:
        reason = f"the challenger failed on {failed_total} of the {total} rows it was run on"
        result = ShadowResult(Verdict.WORSE, True, reason + (f" ({error})" if error else ""), 0, 0)
    shown = {
        "rows": total,
        "failed": failed_total,
        "labelled": labelled,
        "metric": cfg.metric,
        "updated_at": now.isoformat(),
        **({"error": error} if error else {}),
        **result.to_dict(),
    }
    summary.update(scored=scored, failed=failed, shadow=shown)
    if not result.final:
        states = ExperimentStates(app.store)
        try:
            exp = states.note(exp.model, exp.challenger, {"shadow": shown}, phase=SHADOW)
        except InvalidOperationError as exc:  # moved meanwhile (e.g. promoted by hand)
            logger.info("shadow reading not noted: %s", exc)
        summary["experiment"] = brief(exp)
        return JobResult(summary)
    return decide(app, reg, exp, result, shown, summary)


def decide(
    app: App,
    reg: Registry,
    exp: Experiment,
    result: ShadowResult,
    shown: Mapping[str, Any],
    summary: dict[str, Any],
) -> JobResult:
    """Move the experiment on a final verdict; clear a rejected challenger's alias."""
    from driftd.jobs.base import JobResult

    states, now = ExperimentStates(app.store), app.clock()
    better = result.verdict is Verdict.BETTER
    phase = AB if better else REJECTED
    reason = f"shadow verdict {result.verdict.value}: {result.reason}"
    try:
        exp = states.advance(
            exp.model,
            exp.challenger,
            phase,
            expected=SHADOW,
            now=now,
            reason=reason,
            details={"shadow": dict(shown)},
        )
    except InvalidOperationError as exc:  # someone else moved it: their decision stands
        logger.info("shadow verdict not applied: %s", exc)
        return JobResult({**summary, "experiment": None})
    logger.info("experiment of %s v%s: %s", exp.model, exp.challenger, reason)
    if not better:
        summary["cleared"] = clear_alias(reg, exp.challenger, reason) or summary["cleared"]
    summary["experiment"] = brief(exp)
    return JobResult(summary, [event(app.model, exp, result)])


def clear_alias(reg: Registry, version: str, reason: str) -> str | None:
    """Clear ``challenger`` if it still names ``version`` (driftd's log, then MLflow);
    the version cleared, None when there was nothing to clear."""
    from retrain.errors import RetrainError

    try:
        moves = reg.move(
            {"challenger": None}, by=BY, reason=reason, expected={"challenger": version}
        )
    except StorageError as exc:  # moved meanwhile: a new challenger keeps its alias
        logger.info("challenger alias not cleared: %s", exc)
        return None
    except RetrainError as exc:  # recorded in driftd; MLflow follows at the next move
        logger.warning("%s", exc)
        return version
    return version if moves else None


def clear_rejected(app: App, reg: Registry) -> str | None:
    """A rejected challenger that still has the alias (a crash between the rejection
    and the alias move) loses it now."""
    version = reg.aliases().get("challenger")
    if version is None:
        return None
    exp = ExperimentStates(app.store).get(reg.name, version)
    if exp is None or exp.phase != REJECTED:
        return None
    return clear_alias(reg, version, f"rejected: {exp.reason}")


def brief(exp: Experiment) -> dict[str, Any]:
    return {
        "challenger": exp.challenger,
        "champion": exp.champion,
        "phase": exp.phase,
        "reason": exp.reason,
    }


def event(model: str, exp: Experiment, result: ShadowResult) -> Evaluation:
    """The ``experiment`` event of a final verdict, with its numbers."""
    from alerts.signals import EXPERIMENT, Evaluation, Signal

    champion = f"v{exp.champion}" if exp.champion else "the champion"
    then = (
        "next: the A/B test"
        if result.verdict is Verdict.BETTER
        else "rejected: the challenger alias is cleared"
    )
    text = (
        f"shadow verdict {result.verdict.value} for challenger v{exp.challenger} against"
        f" {champion}: {result.reason}; {then}"
    )
    primary = result.comparisons[0] if result.comparisons else None
    details = {
        "challenger": exp.challenger,
        "champion": exp.champion,
        "verdict": result.verdict.value,
        "phase": exp.phase,
        "n": result.n,
        "comparisons": result.to_dict()["comparisons"],
    }
    value = None if primary is None or not math.isfinite(primary.delta) else primary.delta
    signal = Signal(EXPERIMENT, "shadow", "warning", text, value=value, details=details)
    return Evaluation(model, frozenset({EXPERIMENT}), (signal,))


# -- scoring ------------------------------------------------------------------------------

_models: dict[tuple[str, str, str], ScoringModel] = {}


def challenger_model(reg: Registry, version: str) -> ScoringModel:
    """``version`` loaded from the registry, once per process (its digest is checked at
    load; a version's artifact never changes)."""
    key = (reg.tracking_uri, reg.name, version)
    model = _models.get(key)
    if model is None:
        model = reg.load(version)
        _models.clear()  # one challenger at a time
        _models[key] = model
    return model


def score_new(
    app: App, reg: Registry, exp: Experiment, cfg: ShadowConfig
) -> tuple[int, int, str | None]:
    """Score and store every row not scored yet; (rows scored, rows failed, the first
    failure's message)."""
    repo = ExperimentRepository(app.store)
    scorer: Scorer | None = None
    scored = 0
    while True:
        rows = repo.unscored(app.model, exp.challenger, since=exp.started_at, limit=cfg.batch_size)
        if not rows:
            break
        if scorer is None:  # loaded only when there is something to score
            model = challenger_model(reg, exp.challenger)
            scorer = Scorer(model, app.reference.schema, app.config.model.threshold)
        repo.save_shadow(app.model, exp.challenger, scorer.score(rows), now=app.clock())
        scored += len(rows)
        if len(rows) < cfg.batch_size:
            break
    if scorer is None:
        return 0, 0, None
    if scorer.failed:
        logger.warning(
            "challenger v%s failed on %d of %d rows: %s",
            exp.challenger,
            scorer.failed,
            scored,
            scorer.first_error,
        )
    return scored, scorer.failed, scorer.first_error


class Scorer:
    """Scores batches of stored rows with one model, counting the rows it fails on.

    A batch the model fails on is halved until the failing rows stand alone, so a few
    bad rows among thousands cost a few dozen calls, not one call per row. A model that
    failed on ``GIVE_UP`` rows without scoring one is broken (a missing column, a wrong
    task): the rest of its rows are counted as failed without trying each.
    """

    GIVE_UP = 32

    def __init__(
        self, model: ScoringModel, schema: Mapping[str, FeatureType], threshold: float
    ) -> None:
        self.model = model
        self.schema = schema
        self.threshold = threshold
        self.ok = 0
        self.failed = 0
        self.first_error: str | None = None

    def score(self, rows: Sequence[ShadowInput]) -> list[ShadowScore]:
        """The model's answers on ``rows``, no score where it failed."""
        records = [decode(r.features, self.schema) for r in rows]
        values = np.full(len(rows), math.nan)
        errors: dict[int, str] = {}
        self._part(records, 0, len(rows), values, errors)
        out = []
        for i, (row, value) in enumerate(zip(rows, values.tolist(), strict=True)):
            if i not in errors and 0.0 <= value <= 1.0:  # NaN is not
                out.append(ShadowScore(row.id, int(value >= self.threshold), value))
                continue
            if i not in errors:
                self._fail(errors, i, f"the score {value!r} is not a probability")
            out.append(ShadowScore(row.id, None))
        return out

    def _part(
        self,
        records: list[dict[str, Any]],
        lo: int,
        hi: int,
        values: np.ndarray,
        errors: dict[int, str],
    ) -> None:
        from driftd.serve.schema import feature_frame

        if self.ok == 0 and self.failed >= self.GIVE_UP:
            for i in range(lo, hi):
                self._fail(errors, i, f"not tried: it failed on its first {self.GIVE_UP} rows")
            return
        try:
            values[lo:hi] = _scores(self.model, feature_frame(records[lo:hi], self.schema), hi - lo)
        except Exception as exc:  # noqa: BLE001 - a model raises anything; find the rows
            if hi - lo == 1:
                self._fail(errors, lo, f"{type(exc).__name__}: {exc}")
                return
            mid = (lo + hi) // 2
            self._part(records, lo, mid, values, errors)
            self._part(records, mid, hi, values, errors)
            return
        self.ok += hi - lo

    def _fail(self, errors: dict[int, str], i: int, message: str) -> None:
        errors[i] = message
        self.failed += 1
        self.first_error = self.first_error or message


def _scores(model: ScoringModel, frame: Any, n: int) -> np.ndarray:
    values = np.asarray(model.predict_scores(frame), dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(
            f"the model returned shape {values.shape} for {n} rows, not one score per row"
        )
    return values


def decode(features: Mapping[str, Any], schema: Mapping[str, FeatureType]) -> dict[str, Any]:
    """A stored row's features as the model's input: each schema feature of its type,
    None where missing or of another type (as ingestion counts a type error)."""
    return {name: _value(features.get(name), kind) for name, kind in schema.items()}


def _value(v: Any, kind: FeatureType) -> Any:
    if v is None:
        return None
    if kind is FeatureType.NUMERIC:
        if isinstance(v, bool):
            return None
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                return None
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None
    if kind is FeatureType.BOOLEAN:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        return bool(v) if isinstance(v, int) and v in (0, 1) else None
    return v if isinstance(v, str) else None if isinstance(v, dict | list) else str(v)


# -- the verdict --------------------------------------------------------------------------


def verdict(
    app: App, exp: Experiment, settings: ShadowSettings, now: datetime
) -> tuple[ShadowResult, int]:
    """The verdict on the first ``min_sample`` matured labelled rows with both scores,
    and how many matured labelled rows both models answered in all."""
    from retrain.validation import binary_label

    repo = ExperimentRepository(app.store)
    matured = now - app.config.performance.label_delay
    limit = settings.min_sample
    while True:
        rows, total = repo.shadow_rows(
            app.model, exp.challenger, since=exp.started_at, matured_before=matured, limit=limit
        )
        usable = sum(_finite(r.champion_score) and _finite(r.challenger_score) for r in rows)
        if usable >= settings.min_sample or len(rows) >= total:
            break
        limit += max(settings.min_sample - usable, limit)  # rows without a score: read on
    result = shadow_verdict(
        [binary_label(r.label) for r in rows],
        [math.nan if r.champion_score is None else r.champion_score for r in rows],
        [math.nan if r.challenger_score is None else r.challenger_score for r in rows],
        settings,
        elapsed=now - exp.started_at,
    )
    return result, total


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


__all__ = [
    "ShadowConfig",
    "clear_rejected",
    "config_of",
    "decode",
    "Scorer",
    "evaluate",
    "verdict",
]
