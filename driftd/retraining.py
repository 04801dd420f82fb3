"""Retraining as the daemon runs it: stored signals -> decision -> gated candidate ->
MLflow -> ``challenger``.

:func:`retrain` is what the ``retrain`` job and ``driftd retrain --reason`` call. It
decides with :func:`retrain.triggers.decide` (suggest mode only alerts), holds the
single-flight lock, records the attempt in driftd's store, builds the training set,
trains, gates against the baseline and the champion (:func:`retrain.pipeline.attempt`),
logs the run in MLflow, registers a passing candidate and points ``challenger`` at it.
Each step that people act on is an alert: retraining suggested (a condition), and the
events of a training (started, blocked by the data, rejected by a gate, registered).
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any

from alerts.signals import RETRAINING, TRAINING, Evaluation, Signal
from driftd.jobs.base import JobResult
from retrain.errors import RetrainError

if TYPE_CHECKING:
    from datetime import datetime

    from driftd.app import App
    from retrain.dataset import DatasetSpec
    from retrain.gates import GateSpec
    from retrain.pipeline import Attempt
    from retrain.trainers import TrainerSpec
    from storage.models import ModelRepository

logger = logging.getLogger(__name__)

SIGNAL_WINDOWS = 50  # windows of drift and performance the triggers look back over
BY = "driftd retrain"


def specs(app: App) -> tuple[DatasetSpec, TrainerSpec, GateSpec]:
    """The retrain config sections as the training library's specs."""
    from retrain.dataset import DatasetSpec
    from retrain.gates import NO_REGRESSION, ChangeThreshold, GateSpec
    from retrain.trainers import TrainerSpec

    c, r = app.config, app.config.retrain
    target = app.reference.spec.target
    if target is None:
        raise RetrainError("reference.target: retraining needs the reference's labels")
    features = {name: str(kind) for name, kind in app.reference.schema.items()}
    dataset = DatasetSpec(
        features=features,
        target=target,
        lookback=r.lookback,
        maturity=c.performance.label_delay,
        test_window=r.test_window,
        seed=r.trainer.seed,
    )
    trainer = TrainerSpec(
        features=features,
        target=target,
        framework=r.trainer.kind,
        seed=r.trainer.seed,
        max_epochs=r.trainer.max_epochs,
        entry_point=r.trainer.entry_point,
    )
    g, cost = r.gates, c.performance.cost
    unchecked = ChangeThreshold(-math.inf)  # cost not gated
    champion = g.min_delta if g.min_delta else NO_REGRESSION
    gates = GateSpec(
        primary_metric=g.metric,
        threshold=c.model.threshold,
        cost_fn=cost.fn or 1.0,  # no costs configured: every error costs the same
        cost_fp=cost.fp or 1.0,
        primary_min=g.min_value,
        baseline=ChangeThreshold(g.baseline_margin),
        baseline_cost=ChangeThreshold(0.0) if g.cost else unchecked,
        champion=ChangeThreshold(champion),
        champion_cost=ChangeThreshold(NO_REGRESSION) if g.cost else unchecked,
        slices=tuple(g.slices),
        slice_max_regression=g.slice_tolerance,
        seed=r.trainer.seed,
    )
    return dataset, trainer, gates


def retrain(app: App, *, manual_reason: str | None = None) -> JobResult:
    """Decide, and train when the decision is to train (see the module docstring)."""
    from retrain.lock import single_flight
    from retrain.triggers import decide
    from storage.experiment_state import ExperimentStates
    from storage.models import ModelRepository

    now, model = app.clock(), app.model
    repository = ModelRepository(app.store)
    registry_name = app.config.registry.name or model
    signals = repository.signals(
        model,
        windows=SIGNAL_WINDOWS,
        matured_before=now - app.config.performance.label_delay,
        since=_champion_since(repository, registry_name),
    )
    decision = decide(app.config.retrain.policy(), signals, now=now, manual_reason=manual_reason)
    summary: dict[str, Any] = {
        "decision": decision.action,
        "fired": [{"trigger": f.trigger, "detail": f.detail} for f in decision.fired],
        "blocked": decision.blocked,
    }
    trial = ExperimentStates(app.store).active(registry_name)
    if trial is not None and decision.action in ("train", "suggest") and manual_reason is None:
        # a new candidate would cut the trial short: let it finish (a person can still
        # train with `driftd retrain --reason`)
        blocked = f"challenger v{trial.challenger} is on trial ({trial.phase})"
        return JobResult({**summary, "decision": "blocked", "blocked": blocked})
    if decision.action in ("none", "suggest"):
        fired = decision.action == "suggest"
        signal = Signal(RETRAINING, "model", "warning", f"retraining suggested: {decision.reason}")
        looks = [Evaluation(model, frozenset({RETRAINING}), (signal,) if fired else ())]
        return JobResult(summary, looks)
    if not decision.train:  # fired, but blocked (cooldown, too few new labels)
        return JobResult(summary)
    with single_flight(app.store, model, workspace=app.config.workspace) as held:
        if not held:
            return JobResult({**summary, "decision": "busy: another training of it runs"})
        pk = repository.start_training(
            model, trigger=decision.trigger, reason=decision.reason, now=now, data_end=now
        )
        started = f"training started ({decision.trigger}): {decision.reason}"
        app.alert([_event(model, "started", started)])
        try:
            outcome, version, attempt = _train(app, decision.trigger, decision.reason)
        except Exception as exc:
            repository.finish_training(pk, outcome="failed", now=app.clock(), details={})
            raise RetrainError(f"training of {model!r} failed: {exc}") from exc
        details = attempt.to_dict()
        repository.finish_training(
            pk, outcome=outcome, now=app.clock(), version=version, details=details
        )
    return JobResult(
        {**summary, "training": pk, "outcome": outcome, "version": version, "attempt": details},
        [_attempt_event(model, attempt, version)],
    )


def _train(app: App, trigger: str, reason: str) -> tuple[str, str | None, Attempt]:
    from driftd.experiments import registry as build_registry
    from retrain.dataset import load_production
    from retrain.pipeline import attempt
    from retrain.registry import TrainingRun

    dataset, trainer, gates = specs(app)
    registry = build_registry(app)  # alias moves dated by driftd's clock: shadow starts there
    parent = registry.aliases().get("champion")
    champion: Any = registry.load("champion") if parent is not None else None
    now = app.clock()
    production = load_production(app.store, app.model, dataset, now=now)
    result = attempt(
        app.reference.frame(),
        production,
        dataset=dataset,
        trainer=trainer,
        gates=gates,
        now=now,
        champion=champion,
    )
    if result.candidate is None:  # blocked by data validation: nothing to log
        return "blocked", None, result
    report, ts = result.gates, result.training_set
    results = report.results if report is not None else ()
    run = TrainingRun(
        trigger=trigger,
        reason=reason,
        params=dict(result.candidate.params),
        metrics={_key(r.name): r.candidate for r in results if math.isfinite(r.candidate)},
        gates={
            _key(r.name): {"passed": r.passed, "value": r.candidate, "limit": r.limit}
            for r in results
        },
        window=(ts.start, ts.end),
        rows={"train": len(ts.train), "validation": len(ts.validation), "test": len(ts.test)},
        parent=parent,
    )
    passed = result.status == "passed"
    version = registry.log_training(result.candidate, run, register=passed)
    if version is None:
        return "rejected", None, result
    registry.move({"challenger": version}, by=BY, reason=f"{trigger}: {reason}")
    return "registered", version, result


def _champion_since(repository: ModelRepository, name: str) -> datetime | None:
    """When the current champion replaced another, by driftd's alias log: the triggers
    judge the model in production, not the windows its predecessor served. None for a
    first champion (registered as what was already serving)."""
    champion = repository.aliases(name).get("champion")
    if champion is None:
        return None
    moves = [
        m
        for m in repository.alias_history(name, version=champion)
        if m.alias == "champion" and m.to_version == champion
    ]
    if not moves or moves[-1].from_version is None:
        return None
    return moves[-1].moved_at


def _key(name: str) -> str:
    """A gate's name as an MLflow key (letters, digits, ``_-./`` and spaces)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)


def _event(model: str, scope: str, summary: str, **details: Any) -> Evaluation:
    signal = Signal(TRAINING, scope, "warning", summary, details=details)
    return Evaluation(model, frozenset({TRAINING}), (signal,))


def _attempt_event(model: str, attempt: Attempt, version: str | None) -> Evaluation:
    if attempt.status == "blocked":
        return _event(model, "data", f"training blocked by the data: {attempt.reason}")
    gates = attempt.gates.to_dict()["gates"] if attempt.gates is not None else []
    if version is None:
        return _event(model, "gates", f"candidate rejected: {attempt.reason}", gates=gates)
    return _event(
        model,
        "challenger",
        f"candidate registered as challenger (version {version}): {attempt.reason}",
        gates=gates,
        version=version,
    )


def gate_table(attempt: dict[str, Any]) -> list[str]:
    """The gates of a stored attempt as aligned lines (the demo and `models show`)."""
    gates = (attempt.get("gates") or {}).get("gates") or []
    lines = [f"{'gate':<34} {'candidate':>9} {'against':>9} {'limit':>9}  result"]
    for g in gates:
        against = "" if g["reference"] is None else f"{g['reference']:.4f}"
        lines.append(
            f"{g['name']:<34} {g['candidate']:>9.4f} {against:>9} {g['limit']:>9.4f}  "
            + ("pass" if g["passed"] else "FAIL")
        )
    return lines
