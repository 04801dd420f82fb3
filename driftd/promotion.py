"""Alias moves as one resumable decision.

:meth:`retrain.registry.Registry.move` writes driftd's alias log first (the authority:
what ``driftd serve``, the jobs and ``driftd models`` read) and then makes MLflow's
aliases match it. A crash or an MLflow outage between the two leaves MLflow behind;
nothing is lost, because driftd's record already holds the decision. :func:`repair`
makes MLflow match again: the daemon and ``driftd once`` call it when they start, and
the experiment job at each run, so an MLflow that was down is caught up on the next run
after it is back. :func:`move` is a move whose MLflow half may fail without failing the
decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from retrain.errors import RetrainError
from storage.models import AliasMove

if TYPE_CHECKING:
    from driftd.app import App
    from retrain.registry import Registry

logger = logging.getLogger(__name__)


def repair(reg: Registry) -> bool:
    """Make MLflow's aliases what driftd's record says; False (logged) when MLflow cannot
    be reached or refuses: the next call tries again. Does nothing (and does not touch
    MLflow) while driftd has no alias recorded for the model."""
    if not reg.aliases() and not reg.repository.alias_history(reg.name, limit=1):
        return True
    try:
        reg.sync_aliases()
    except RetrainError as exc:
        logger.warning("%s; driftd tries again at its next run", exc)
        return False
    return True


def repair_at_start(app: App) -> None:
    """:func:`repair` for the daemon's and ``driftd once``'s start; never raises (a
    registry that cannot even be built is logged: monitoring goes on without it)."""
    from driftd.experiments import registry

    try:
        repair(registry(app))
    except Exception:  # noqa: BLE001 - start-up repair must not stop monitoring
        logger.exception("could not check the registry's aliases against MLflow")


def move(action: Callable[[], list[AliasMove]], reg: Registry, what: str) -> str | None:
    """Run ``action`` (``reg.promote(...)``, ``reg.rollback(...)``, ``reg.move(...)``).
    When driftd's log recorded it but MLflow was not updated, the decision stands (the
    repair catches MLflow up later): returns that warning instead of raising. Other
    failures raise."""
    before = reg.aliases()
    try:
        action()
    except RetrainError as exc:
        if reg.aliases() == before:
            raise  # nothing was recorded: the decision did not happen
        logger.warning("%s recorded in driftd, MLflow not updated yet: %s", what, exc)
        return f"MLflow not updated yet (driftd repairs it at its next run): {exc}"
    return None


__all__ = ["move", "repair", "repair_at_start"]
