"""The challenger's experiment as the daemon runs it, one cycle at a time.

Each run reconciles the experiment with the registry's aliases
(:func:`driftd.experiments.sync`), then acts on its phase:

- ``ab``: the sample ratio check and the sequential analysis
  (:func:`monitor.ab.analysis.analyse`) on the rows served since the A/B test began,
  labelled rows counting once matured (served more than ``performance.label_delay``
  ago). The reading is kept under ``details["ab"]``. A **stop** (the split is broken)
  ends the experiment in ``stopped``; a **rollback** ends it in ``rejected`` and clears
  the challenger alias; a **promote** moves the aliases (policy ``auto``) and starts the
  bake, or waits in ``promote`` for ``driftd models promote`` (policy ``manual``). Every
  decision is an alert, with its interval.
- ``promote``: waits for a person (or promotes, when the policy became ``auto``).
- ``baking``: :mod:`driftd.baking`.

The shadow phase is the shadow job's. Alias moves go through :mod:`driftd.promotion`:
driftd's log first, then MLflow, repaired at the next run when MLflow was down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from alerts.signals import EXPERIMENT, PROMOTION, Evaluation, Severity, Signal
from driftd.config_experiment import ExperimentConfig, experiment_config
from driftd.experiments import registry, sync
from driftd.jobs.base import JobResult
from driftd.promotion import move, repair
from monitor.windows import format_duration
from storage.experiment_state import (
    AB,
    BAKING,
    PROMOTE,
    REJECTED,
    STOPPED,
    Experiment,
    ExperimentStates,
)

if TYPE_CHECKING:
    from driftd.app import App
    from monitor.ab.analysis import Decision
    from retrain.registry import Registry

logger = logging.getLogger(__name__)

BY = "driftd experiment"
PAGE = 50_000


def run(app: App) -> JobResult:
    """One cycle of the experiment of ``app``'s model (see the module docstring)."""
    cfg = experiment_config(app.config)
    reg = registry(app)
    repaired = repair(reg)
    exp = sync(app, reg)
    summary: dict[str, Any] = {"mlflow_in_step": repaired}
    if exp is None:
        return JobResult({**summary, "phase": None})
    summary |= {"challenger": exp.challenger, "phase": exp.phase}
    if exp.phase == AB:
        return analyse_ab(app, reg, exp, cfg, summary)
    if exp.phase == PROMOTE and cfg.policy == "auto":
        reason = (exp.details.get("ab") or {}).get("reason") or exp.reason or "won the A/B test"
        return promote(app, reg, exp, cfg, reason, summary)
    if exp.phase == BAKING:
        from driftd.baking import bake

        return bake(app, reg, exp, cfg, summary)
    return JobResult(summary)


# -- the A/B test -------------------------------------------------------------------------


def reading(app: App, exp: Experiment, cfg: ExperimentConfig) -> tuple[Decision, dict[str, Any]]:
    """The analysis of the rows served since the A/B phase began, and what it read."""
    from monitor.ab.analysis import analyse
    from monitor.ab.metrics import Costs, fold
    from monitor.ab.sequential import Moments
    from storage.experiment import ExperimentRepository

    now, model = app.clock(), app.model
    settings = cfg.settings()
    since = exp.phase_at
    matured_before = now - app.config.performance.label_delay
    repository = ExperimentRepository(app.store)
    counts = repository.served_counts(model, since=since)
    coverage = repository.label_coverage(model, since=since, matured_before=matured_before)
    cost = app.config.performance.cost
    costs = Costs(cost.fn or 1.0, cost.fp or 1.0)
    metrics = [settings.metric, *(g.metric for g in settings.guardrails)]
    moments: dict[str, dict[str, Moments]] = {}
    arms = [settings.champion, settings.challenger]
    for page in repository.iter_labelled_rows(
        model, since=since, matured_before=matured_before, variants=arms, page=PAGE
    ):
        moments = fold(
            moments,
            [r.variant for r in page],
            [r.label for r in page],
            [r.prediction for r in page],
            list(dict.fromkeys(metrics)),
            costs=costs,
        )
    decision = analyse(counts, moments, settings, elapsed=now - since)
    read = {
        "since": since.isoformat(),
        "matured_before": matured_before.isoformat(),
        "served": {str(k): v for k, v in counts.items()},
        "labelled": {str(k): {"matured": n, "labelled": k_} for k, (n, k_) in coverage.items()},
        "split": settings.split,
        "policy": cfg.policy,
        "at": now.isoformat(),
    }
    return decision, read


def analyse_ab(
    app: App, reg: Registry, exp: Experiment, cfg: ExperimentConfig, summary: dict[str, Any]
) -> JobResult:
    from monitor.ab.analysis import Action

    decision, read = reading(app, exp, cfg)
    noted = decision.to_dict() | read
    states = ExperimentStates(app.store)
    exp = states.note(reg.name, exp.challenger, {"ab": noted}, phase=AB)
    summary |= {"decision": decision.action.value, "reason": decision.reason}
    version = exp.challenger
    if decision.action is Action.CONTINUE:
        return JobResult(summary)
    now = app.clock()
    if decision.action is Action.STOP:
        states.advance(reg.name, version, STOPPED, expected=AB, now=now, reason=decision.reason)
        summary["phase"] = STOPPED
        text = (
            f"A/B test of version {version} stopped: {decision.reason}. The split is broken, "
            "so nothing is promoted or rolled back: fix the assignment, then start a new "
            "experiment"
        )
        return JobResult(summary, [event(app, EXPERIMENT, "stopped", "critical", text, noted)])
    if decision.action is Action.ROLLBACK:
        warning = move(
            lambda: reg.move(
                {"challenger": None},
                by=BY,
                reason=f"A/B test: {decision.reason}",
                expected={"challenger": version},
            ),
            reg,
            "clearing the challenger",
        )
        states.advance(reg.name, version, REJECTED, expected=AB, now=now, reason=decision.reason)
        summary |= {"phase": REJECTED, "mlflow": warning}
        text = f"challenger version {version} rejected, the champion stays: {decision.reason}"
        return JobResult(summary, [event(app, EXPERIMENT, "rejected", "warning", text, noted)])
    # promote
    if cfg.policy == "auto":
        return promote(app, reg, exp, cfg, decision.reason, summary, noted)
    states.advance(
        reg.name,
        version,
        PROMOTE,
        expected=AB,
        now=now,
        reason=f"won the A/B test; waiting for `driftd models promote`: {decision.reason}",
    )
    summary["phase"] = PROMOTE
    text = (
        f"challenger version {version} won the A/B test: {decision.reason}. Policy manual: "
        f"promote it with `driftd models promote {version} --reason ...` (the bake period "
        "starts then), or roll it back"
    )
    return JobResult(summary, [event(app, EXPERIMENT, "winner", "warning", text, noted)])


def promote(
    app: App,
    reg: Registry,
    exp: Experiment,
    cfg: ExperimentConfig,
    reason: str,
    summary: dict[str, Any],
    details: dict[str, Any] | None = None,
) -> JobResult:
    """Policy auto: the challenger becomes champion (driftd's log, then MLflow), the
    champion becomes previous, and the bake period starts."""
    version, now = exp.challenger, app.clock()
    before = reg.aliases().get("champion")
    warning = move(
        lambda: reg.promote(version, by=BY, reason=f"won the A/B test: {reason}"),
        reg,
        f"promoting version {version}",
    )
    ExperimentStates(app.store).advance(
        reg.name,
        version,
        BAKING,
        expected=exp.phase,
        now=now,
        reason=f"promoted by {BY} (policy auto): the bake period starts",
        details={"promotion": {"at": now.isoformat(), "by": BY, "previous": before}},
    )
    summary |= {"phase": BAKING, "promoted": version, "mlflow": warning}
    text = (
        f"version {version} promoted to champion (was {before}); the bake period of "
        f"{format_duration(cfg.bake.period)} starts: {reason}"
    )
    detail = dict(details or exp.details.get("ab") or {})
    return JobResult(summary, [event(app, PROMOTION, "promoted", "warning", text, detail)])


def event(
    app: App, rule: str, scope: str, severity: Severity, text: str, details: dict[str, Any]
) -> Evaluation:
    """A one-shot alert (experiment and promotion rules are events)."""
    signal = Signal(rule, scope, severity, text, details=details)
    return Evaluation(app.model, frozenset({rule}), (signal,))


__all__ = ["BY", "analyse_ab", "event", "promote", "reading", "run"]
