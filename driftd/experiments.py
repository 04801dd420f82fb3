"""The challenger's experiment, kept in step with the registry's aliases.

The retrain job (or a person, with ``driftd models register --alias challenger``) sets
the ``challenger`` alias; the shadow and A/B jobs take it from there, each starting
from :func:`sync`, which reconciles the ``experiments`` row with where the aliases are
now:

- a new challenger starts an experiment, in ``shadow`` (``ab`` when the shadow job is
  disabled), dated from the alias move that made it challenger, so the shadow job
  scores every row served since;
- a challenger that a person promoted by hand (``driftd models promote``) enters the
  bake period; one whose alias moved elsewhere or was cleared is ``superseded``;
- a baking champion that is no longer champion (rolled back by hand) is
  ``rolled_back``.

Aliases are driftd's record (MLflow follows it): see :meth:`retrain.registry.Registry.move`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from storage.experiment_state import (
    AB,
    BAKING,
    PROMOTE,
    ROLLED_BACK,
    SHADOW,
    SUPERSEDED,
    Experiment,
    ExperimentStates,
)

if TYPE_CHECKING:
    from driftd.app import App
    from retrain.registry import Registry

logger = logging.getLogger(__name__)


def registry(app: App) -> Registry:
    from driftd.config_retrain import build_registry

    reg = build_registry(app.config, app.store)
    reg.clock = app.clock  # alias moves dated by driftd's clock (the demo's is accelerated)
    return reg


def shadow_enabled(app: App) -> bool:
    """Whether the shadow job runs for this configuration (``shadow.enabled``, labels,
    a binary model): if not, a new challenger goes straight to the A/B test."""
    from driftd.jobs import registered

    job = registered().get("shadow")
    return job is not None and job.enabled(app.config)


def sync(app: App, reg: Registry) -> Experiment | None:
    """The active experiment of ``reg``'s model after reconciling it with the aliases
    (None: no challenger on trial)."""
    states = ExperimentStates(app.store)
    model, now = reg.name, app.clock()
    aliases = reg.aliases()
    champion, challenger = aliases.get("champion"), aliases.get("challenger")
    active = states.active(model)
    if active is not None:
        phase, version = active.phase, active.challenger
        if phase in (SHADOW, AB, PROMOTE) and champion == version:
            by = _last_move(reg, version, "champion")
            return states.advance(
                model,
                version,
                BAKING,
                expected=phase,
                now=now,
                reason=f"promoted to champion{by}: the bake period starts",
            )
        if phase in (SHADOW, AB, PROMOTE) and challenger != version:
            where = f"moved to version {challenger}" if challenger else "was cleared"
            states.advance(
                model,
                version,
                SUPERSEDED,
                expected=phase,
                now=now,
                reason=f"the challenger alias {where}{_last_move(reg, version, 'challenger')}",
            )
        elif phase == BAKING and champion != version:
            states.advance(
                model,
                version,
                ROLLED_BACK,
                expected=phase,
                now=now,
                reason=f"no longer champion (now {champion}){_last_move(reg, version, 'champion')}",
            )
        else:
            return active
    if challenger is None or challenger == champion:
        return None
    existing = states.get(model, challenger)
    if existing is not None:  # a finished trial is not started again
        return existing if existing.active else None
    started = _alias_set_at(reg, challenger) or now
    phase = SHADOW if shadow_enabled(app) else AB
    experiment = states.start(
        model,
        challenger,
        champion=champion,
        now=started,
        reason=f"version {challenger} became challenger"
        + ("" if phase == SHADOW else " (shadow disabled: straight to the A/B test)"),
        phase=phase,
    )
    logger.info("experiment of %s v%s started in %s", model, challenger, phase)
    return experiment


def _alias_set_at(reg: Registry, version: str) -> datetime | None:
    """When ``version`` last became challenger, by driftd's alias log."""
    moves = [
        m
        for m in reg.repository.alias_history(reg.name, version=version)
        if m.alias == "challenger" and m.to_version == version
    ]
    return moves[-1].moved_at if moves else None


def _last_move(reg: Registry, version: str, alias: str) -> str:
    moves = [m for m in reg.repository.alias_history(reg.name, version=version) if m.alias == alias]
    if not moves:
        return ""
    m = moves[-1]
    return f" by {m.moved_by} ({m.reason})"


__all__ = ["registry", "shadow_enabled", "sync"]
