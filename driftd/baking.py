"""The bake period: after a promotion, watch the new champion and roll back to
``previous`` on a breach.

The bake covers the rows served in ``[promoted, promoted + bake.period)`` and ends once
their labels have matured (``performance.label_delay`` later): a bake that ended before
any label arrived would prove nothing. Each run reads the performance job's stored
windows that started after the promotion and, for the watched metrics
(``bake.metric``, default the A/B metric's counterpart, and ``bake.guardrails``), pools

- the **realized** value of the matured windows (labels), and
- the **estimated** value (CBPE) of every window, when ``bake.estimated`` is on and
  the estimator has the metric; it acts only until the realized reading of the same
  metric has ``bake.min_rows`` rows (before labels), after which labels decide,

into one reading with an always-valid interval (:mod:`monitor.ab.bake`).

The limit of a metric is what the A/B test measured for the new champion, less the
tolerated drop (``bake.max_drop``, or the guardrail's ``max_drop``). Without an A/B
figure for that metric (promoted by hand from shadow, or a metric the A/B did not
measure) it is the previous champion's realized value over the ``bake.period`` before
the promotion, less the same drop. A breach is an interval entirely beyond the limit,
on at least ``bake.min_rows`` rows: then the previous champion serves again
(``driftd bake`` in the alias log), the experiment ends ``rolled_back`` and a promotion
alert gives the numbers. Passed without a breach: ``done``.

CBPE is calibrated on the reference's scores; for a new model whose scores are
calibrated differently its estimate is biased. ``bake.estimated: false`` acts on
labels only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from scipy.stats import norm

from alerts.signals import PROMOTION
from driftd.experimenting import event
from driftd.promotion import move
from monitor.ab.bake import ESTIMATED, REALIZED, Reading, Watch, limit_for, pool, watch
from monitor.concept.performance import LOWER_IS_BETTER
from monitor.results import WindowPerformance
from storage.experiment_state import BAKING, DONE, ROLLED_BACK, Experiment, ExperimentStates

if TYPE_CHECKING:
    from alerts.signals import Evaluation
    from driftd.app import App
    from driftd.config_experiment import ExperimentConfig
    from driftd.jobs.base import JobResult
    from retrain.registry import Registry

logger = logging.getLogger(__name__)

BY = "driftd bake"
WINDOWS = 10_000  # the latest windows read: the bake and the period before it
PER_ROW = {"tp", "fp", "tn", "fn", "cost"}  # CBPE reports these as window totals


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER and metric != "cost"


def realized_reading(window: WindowPerformance, metric: str) -> Reading | None:
    performance = window.realized
    m = None if performance is None else performance.metrics.get(metric)
    if performance is None or m is None:
        return None
    if m.value is None or m.lower is None or m.upper is None:
        return None
    z = float(norm.ppf(0.5 + performance.confidence / 2))
    return Reading(int(m.n), float(m.value), (m.upper - m.lower) / (2 * z))


def estimated_reading(window: WindowPerformance, metric: str) -> Reading | None:
    estimated = window.estimated
    m = None if estimated is None else estimated.metrics.get(metric)
    n = 0 if estimated is None else int(estimated.n or 0)
    if m is None or m.value is None or m.sampling_error is None or n == 0:
        return None
    scale = n if metric in PER_ROW else 1
    return Reading(n, m.value / scale, m.sampling_error / scale)


def ab_figures(
    exp: Experiment, metric: str, ab_metric_of: Mapping[str, str]
) -> tuple[float, float] | None:
    """What the A/B test measured for (challenger, champion) in performance ``metric``."""
    ab = exp.details.get("ab") or {}
    for result in [ab.get("primary"), *(ab.get("guardrails") or [])]:
        if not result or ab_metric_of.get(result["metric"]) != metric:
            continue
        new, old = result["challenger"], result["champion"]
        if new is None or old is None or not result.get("n_challenger"):
            return None
        if result["metric"] == "error_rate":  # watched as accuracy
            return 1.0 - new, 1.0 - old
        return float(new), float(old)
    return None


def bake(
    app: App, reg: Registry, exp: Experiment, cfg: ExperimentConfig, summary: dict[str, Any]
) -> JobResult:
    from driftd.config_experiment import BAKE_METRIC
    from driftd.jobs.base import JobResult

    now, b = app.clock(), cfg.bake
    promoted = exp.phase_at
    served_until = promoted + b.period
    ends = served_until + app.config.performance.label_delay
    windows = app.performance_repository.windows(app.model, WINDOWS)
    bounds = app.performance_repository.window_bounds(app.model, [w.start for w in windows])
    after = [w for w in windows if promoted <= w.start < served_until]
    before = [
        w
        for w in windows
        if w.start >= promoted - b.period
        and bounds.get(w.start, w.start) <= promoted
        and w.state != "pending"
    ]
    previous = (exp.details.get("promotion") or {}).get("previous") or exp.champion
    watches: list[Watch] = []
    unwatched: list[str] = []
    alpha = 1 - b.confidence
    for metric, drop in [
        (cfg.bake_metric, b.max_drop),
        *((g.metric, g.max_drop) for g in b.guardrails),
    ]:
        hib = higher_is_better(metric)
        figures = ab_figures(exp, metric, BAKE_METRIC)
        if figures is not None:
            limit = limit_for(hib, figures[0], drop)
            basis = f"the A/B measured {figures[0]:.4g} for v{exp.challenger}, {drop:g} tolerated"
        else:
            old = pool([r for w in before if (r := realized_reading(w, metric)) is not None])
            if old is None:
                unwatched.append(
                    f"{metric}: no A/B figure and no realized value before the promotion"
                )
                continue
            limit = limit_for(hib, old.value, drop)
            basis = f"v{previous} realized {old.value:.4g} before the promotion, {drop:g} tolerated"
        sources = [(REALIZED, realized_reading, [w for w in after if w.state != "pending"])]
        if b.estimated:
            sources.append((ESTIMATED, estimated_reading, after))
        for source, read, chosen in sources:
            readings = [r for w in chosen if (r := read(w, metric)) is not None]
            if source == ESTIMATED and not readings:
                continue
            watches.append(
                watch(
                    metric,
                    source,
                    readings,
                    higher_is_better=hib,
                    limit=limit,
                    basis=basis,
                    alpha=alpha,
                    min_rows=b.min_rows,
                )
            )
    # the estimate stands in for labels until they come: once a metric's realized reading
    # has min_rows, it alone decides (the estimate of a new model may be biased, above)
    labelled = {w.metric for w in watches if w.source == REALIZED and w.n >= b.min_rows}
    breached = [
        w for w in watches if w.breached and (w.source == REALIZED or w.metric not in labelled)
    ]
    noted = {
        "promoted_at": promoted.isoformat(),
        "period": b.period.total_seconds(),
        "ends_at": ends.isoformat(),
        "windows": len(after),
        "watches": [w.to_dict() for w in watches],
        "unwatched": unwatched,
        "breached": [w.describe() for w in breached],
        "at": now.isoformat(),
    }
    states = ExperimentStates(app.store)
    version = exp.challenger
    summary |= {"bake": {k: noted[k] for k in ("ends_at", "windows", "breached", "unwatched")}}
    if breached:
        return _roll_back(app, reg, exp, breached, noted, summary)
    states.note(reg.name, version, {"bake": noted}, phase=BAKING)
    if now < ends:
        return JobResult(summary)
    reason = f"baked {_days(b.period)} without a breach: " + (
        "; ".join(w.describe() for w in watches) or "nothing to watch"
    )
    if not any(w.value is not None and w.n >= w.min_rows for w in watches):
        # not a pass: nothing was measured (e.g. a metric realized performance lacks)
        reason += (
            f"; no watched metric reached {b.min_rows} rows, so the bake measured nothing:"
            " set experiment.bake.metric to one the performance job measures"
        )
    states.advance(reg.name, version, DONE, expected=BAKING, now=now, reason=reason)
    summary["phase"] = DONE
    text = f"version {version} passed its bake period and stays champion: {reason}"
    return JobResult(summary, [event(app, PROMOTION, "baked", "warning", text, noted)])


def _roll_back(
    app: App,
    reg: Registry,
    exp: Experiment,
    breached: Sequence[Watch],
    noted: dict[str, Any],
    summary: dict[str, Any],
) -> JobResult:
    from driftd.jobs.base import JobResult

    version, now = exp.challenger, app.clock()
    states = ExperimentStates(app.store)
    why = "; ".join(w.describe() for w in breached)
    previous = reg.aliases().get("previous")
    if previous is None:
        first = not (exp.details.get("bake") or {}).get("unrollable")
        states.note(reg.name, version, {"bake": {**noted, "unrollable": True}}, phase=BAKING)
        summary["phase"] = BAKING
        evaluations: list[Evaluation] = []
        if first:  # said once: the breach stays until someone acts
            text = f"version {version} breached its bake guardrails, but there is no previous version to roll back to: {why}"
            evaluations.append(event(app, PROMOTION, "bake", "critical", text, noted))
        return JobResult(summary, evaluations)
    reason = f"bake period breach: {why}"
    warning = move(lambda: reg.rollback(by=BY, reason=reason), reg, f"rolling back v{version}")
    states.note(reg.name, version, {"bake": noted}, phase=BAKING)
    states.advance(reg.name, version, ROLLED_BACK, expected=BAKING, now=now, reason=reason)
    summary |= {"phase": ROLLED_BACK, "champion": previous, "mlflow": warning}
    text = f"version {version} rolled back, version {previous} is champion again: {reason}"
    return JobResult(summary, [event(app, PROMOTION, "rolled_back", "critical", text, noted)])


def _days(period: timedelta) -> str:
    hours = period.total_seconds() / 3600
    return f"{hours / 24:g}d" if hours >= 24 else f"{hours:g}h"


def bake_ends(exp: Experiment, cfg: ExperimentConfig, label_delay: timedelta) -> datetime:
    return exp.phase_at + cfg.bake.period + label_delay


__all__ = ["BY", "bake", "bake_ends", "estimated_reading", "realized_reading"]
