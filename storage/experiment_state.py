"""Where each challenger is on its way to production: one ``experiments`` row per
(model, challenger version), moved from phase to phase by the shadow and A/B jobs.

    shadow ──better──> ab ──promote──> promote (policy manual: waits for a person)
       │                │                 │
       │                │                 └──promoted──> baking ──bake period──> done
       │                │                                  └──guardrail breach──> rolled_back
       └──worse/none──> rejected <──roll back──┘
                        stopped   (sample ratio mismatch: the split is broken)
                        superseded (the challenger alias moved elsewhere)

A phase change is a compare-and-set on the phase the caller decided from
(:meth:`ExperimentStates.advance`): two daemons, or a job and a person at the CLI,
cannot both move the same experiment from the same phase. ``details`` keeps the latest
reading of each phase (``{"shadow": ..., "ab": ..., "bake": ...}``) as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, select, update

from storage import schema
from storage.errors import InvalidOperationError
from storage.store import Store

SHADOW, AB, PROMOTE, BAKING = "shadow", "ab", "promote", "baking"
DONE, REJECTED, STOPPED, ROLLED_BACK, SUPERSEDED = (
    "done",
    "rejected",
    "stopped",
    "rolled_back",
    "superseded",
)
ACTIVE = (SHADOW, AB, PROMOTE, BAKING)
FINAL = (DONE, REJECTED, STOPPED, ROLLED_BACK, SUPERSEDED)
PHASES = ACTIVE + FINAL


@dataclass(frozen=True)
class Experiment:
    pk: int
    model: str
    challenger: str
    champion: str | None
    phase: str
    started_at: datetime
    phase_at: datetime
    finished_at: datetime | None
    reason: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "challenger": self.challenger,
            "champion": self.champion,
            "phase": self.phase,
            "started_at": self.started_at.isoformat(),
            "phase_at": self.phase_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "reason": self.reason,
            "details": dict(self.details),
        }


def _experiment(r: Row[Any]) -> Experiment:
    return Experiment(
        pk=r.pk,
        model=r.model,
        challenger=r.challenger,
        champion=r.champion,
        phase=r.phase,
        started_at=r.started_at,
        phase_at=r.phase_at,
        finished_at=r.finished_at,
        reason=r.reason,
        details={} if r.details is None else orjson.loads(r.details),
    )


def _check(phase: str) -> None:
    if phase not in PHASES:
        raise InvalidOperationError(f"unknown experiment phase {phase!r}; use {', '.join(PHASES)}")


class ExperimentStates:
    """The ``experiments`` table: one row per challenger version of a model."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(
        self,
        model: str,
        challenger: str,
        *,
        champion: str | None,
        now: datetime,
        reason: str,
        phase: str = SHADOW,
    ) -> Experiment:
        """The experiment of ``challenger``, created in ``phase`` when there is none yet
        (a second call returns the first one unchanged)."""
        _check(phase)
        t = schema.experiments
        with self.store.transaction(f"starting the experiment of {model!r} v{challenger}") as conn:
            found = conn.execute(
                select(t).where(t.c.model == model, t.c.challenger == challenger)
            ).first()
            if found is not None:
                return _experiment(found)
            conn.execute(
                t.insert().values(
                    model=model,
                    challenger=challenger,
                    champion=champion,
                    phase=phase,
                    started_at=now,
                    phase_at=now,
                    finished_at=now if phase in FINAL else None,
                    reason=reason,
                    details=None,
                )
            )
            row = conn.execute(
                select(t).where(t.c.model == model, t.c.challenger == challenger)
            ).one()
            return _experiment(row)

    def get(self, model: str, challenger: str) -> Experiment | None:
        t = schema.experiments
        with self.store.connect("reading an experiment") as conn:
            row = conn.execute(
                select(t).where(t.c.model == model, t.c.challenger == challenger)
            ).first()
        return None if row is None else _experiment(row)

    def active(self, model: str) -> Experiment | None:
        """The newest experiment of ``model`` that is not over."""
        t = schema.experiments
        query = (
            select(t)
            .where(t.c.model == model, t.c.phase.in_(ACTIVE))
            .order_by(t.c.pk.desc())
            .limit(1)
        )
        with self.store.connect("reading the active experiment") as conn:
            row = conn.execute(query).first()
        return None if row is None else _experiment(row)

    def history(self, model: str, limit: int = 20) -> list[Experiment]:
        """The newest ``limit`` experiments of ``model``, newest first."""
        t = schema.experiments
        query = select(t).where(t.c.model == model).order_by(t.c.pk.desc()).limit(limit)
        with self.store.connect("reading experiments") as conn:
            return [_experiment(r) for r in conn.execute(query)]

    def advance(
        self,
        model: str,
        challenger: str,
        phase: str,
        *,
        expected: str,
        now: datetime,
        reason: str,
        details: Mapping[str, Any] | None = None,
    ) -> Experiment:
        """Move the experiment from ``expected`` to ``phase``; ``details`` are merged
        into the stored ones (by top-level key). When the experiment is no longer in
        ``expected`` (someone else moved it), nothing changes and
        :class:`InvalidOperationError` says where it is."""
        _check(phase)
        return self._update(
            model, challenger, expected, now=now, phase=phase, reason=reason, details=details
        )

    def note(
        self, model: str, challenger: str, details: Mapping[str, Any], *, phase: str
    ) -> Experiment:
        """Merge ``details`` into the experiment's, keeping its phase (which must still
        be ``phase``)."""
        return self._update(model, challenger, phase, details=details)

    def _update(
        self,
        model: str,
        challenger: str,
        expected: str,
        *,
        now: datetime | None = None,
        phase: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Experiment:
        t = schema.experiments
        where = (t.c.model == model, t.c.challenger == challenger)
        with self.store.transaction(f"updating the experiment of {model!r} v{challenger}") as conn:
            query = select(t).where(*where)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise InvalidOperationError(f"no experiment for {model!r} version {challenger!r}")
            if row.phase != expected:
                raise InvalidOperationError(
                    f"the experiment of {model!r} v{challenger} is in phase {row.phase!r},"
                    f" not {expected!r}: it was moved meanwhile; nothing changed"
                )
            values: dict[str, Any] = {}
            if details:
                merged = {} if row.details is None else orjson.loads(row.details)
                merged.update(details)
                values["details"] = orjson.dumps(merged, option=orjson.OPT_NON_STR_KEYS).decode()
            if phase is not None and now is not None:
                values.update(phase=phase, phase_at=now, reason=reason)
                if phase in FINAL:
                    values["finished_at"] = now
            if values:
                conn.execute(update(t).where(*where, t.c.phase == expected).values(**values))
            return _experiment(conn.execute(select(t).where(*where)).one())


__all__ = [
    "AB",
    "ACTIVE",
    "BAKING",
    "DONE",
    "FINAL",
    "PHASES",
    "PROMOTE",
    "REJECTED",
    "ROLLED_BACK",
    "SHADOW",
    "STOPPED",
    "SUPERSEDED",
    "Experiment",
    "ExperimentStates",
]
