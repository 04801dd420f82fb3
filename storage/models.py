"""driftd's record of the model registry: versions and their artifact digests, the
current aliases, the append-only log of alias moves, training attempts, and the stored
signals the retrain triggers read.

MLflow is the registry (see :mod:`retrain.registry`); this module keeps what driftd must
be able to prove even if someone edits MLflow by hand: which artifact (SHA-256) each
version is, and every alias move with who made it, when and why. Alias moves are only
ever inserted; :meth:`ModelRepository.move_aliases` updates the current aliases and
appends the log rows of one decision in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, select, update

from storage import schema
from storage.errors import StorageError
from storage.results import WindowPerformance, WindowResults
from storage.store import Store


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: str
    status: str  # candidate, champion, archived, rejected: see the aliases for serving
    uri: str | None
    framework: str | None
    parent_version: str | None
    digest: str | None
    run_id: str | None
    metrics: dict[str, Any]
    params: dict[str, Any]
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AliasMove:
    pk: int
    model: str
    move: str  # the id shared by the rows of one decision
    alias: str
    from_version: str | None
    to_version: str | None
    moved_by: str
    reason: str
    moved_at: datetime


@dataclass(frozen=True)
class Training:
    pk: int
    model: str
    trigger: str
    reason: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str  # running, registered, rejected, failed
    data_end: datetime | None
    version: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class WindowSignal:
    """What the triggers read of one window: dataset drift and performance."""

    start: datetime
    end: datetime
    drifted: bool | None  # None: not finalized yet
    state: str | None  # performance: pending, incomplete, complete (None: not computed)
    realized: dict[str, float]  # metric -> value (labelled rows so far)
    estimated: dict[str, float]  # metric -> label-free estimate


@dataclass(frozen=True)
class Signals:
    """The stored inputs of the retrain triggers for one model, read at one time."""

    windows: tuple[WindowSignal, ...]  # the latest windows, oldest first
    detections: tuple[datetime, ...]  # concept-drift detections since the last training
    last_training: Training | None
    new_labels: int  # matured labelled rows newer than the last training's data


def _decode(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


def _version(r: Any) -> ModelVersion:
    return ModelVersion(
        r.model,
        r.version,
        r.status,
        r.uri,
        r.framework,
        r.parent_version,
        r.digest,
        r.run_id,
        _decode(r.metrics) or {},
        _decode(r.params) or {},
        _decode(r.details) or {},
        r.created_at,
    )


def _training(r: Any) -> Training:
    return Training(
        r.pk,
        r.model,
        r.trigger,
        r.reason,
        r.started_at,
        r.finished_at,
        r.outcome,
        r.data_end,
        r.version,
        _decode(r.details) or {},
    )


def _realized_values(performance: WindowPerformance | None) -> dict[str, float]:
    """``{metric: value}`` of a window's realized performance (labelled rows so far)."""
    if performance is None or performance.realized is None:
        return {}
    metrics = performance.realized.metrics
    return {name: m.value for name, m in metrics.items() if m.value is not None}


def _estimated_values(performance: WindowPerformance | None) -> dict[str, float]:
    """``{metric: value}`` of a window's label-free estimate."""
    if performance is None or performance.estimated is None:
        return {}
    metrics = performance.estimated.metrics
    return {name: m.value for name, m in metrics.items() if m.value is not None}


class ModelRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- versions -----------------------------------------------------------------------

    def add_version(self, version: ModelVersion) -> None:
        t = schema.model_versions
        with self.store.transaction(f"recording model version {version.version!r}") as conn:
            conn.execute(
                t.insert().values(
                    model=version.model,
                    version=version.version,
                    status=version.status,
                    uri=version.uri,
                    framework=version.framework,
                    parent_version=version.parent_version,
                    digest=version.digest,
                    run_id=version.run_id,
                    metrics=_json(version.metrics),
                    params=_json(version.params),
                    details=_json(version.details),
                    created_at=version.created_at,
                )
            )

    def version(self, model: str, version: str) -> ModelVersion | None:
        t = schema.model_versions
        with self.store.connect("reading a model version") as conn:
            row = conn.execute(select(t).where(t.c.model == model, t.c.version == version)).first()
        return None if row is None else _version(row)

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of ``model``, oldest first."""
        t = schema.model_versions
        with self.store.connect("reading model versions") as conn:
            rows = conn.execute(select(t).where(t.c.model == model).order_by(t.c.created_at))
            return sorted((_version(r) for r in rows), key=_version_order)

    # -- aliases ------------------------------------------------------------------------

    def aliases(self, model: str) -> dict[str, str]:
        """The current aliases of ``model``: ``{alias: version}``."""
        t = schema.model_aliases
        with self.store.connect("reading model aliases") as conn:
            rows = conn.execute(select(t.c.alias, t.c.version).where(t.c.model == model))
            return {alias: version for alias, version in rows}

    def move_aliases(
        self,
        model: str,
        moves: Mapping[str, str | None],
        *,
        by: str,
        reason: str,
        now: datetime,
        expected: Mapping[str, str | None] | None = None,
    ) -> list[AliasMove]:
        """Point each alias of ``moves`` at its version (None removes it) and append the
        moves to the log, as one decision in one transaction.

        ``expected``: the aliases' versions the caller decided from; when another process
        moved one of them meanwhile, nothing changes and :class:`StorageError` says so.
        Aliases already where asked are not logged again.
        """
        if not reason.strip():
            raise StorageError(f"moving aliases of {model!r}: a reason is required")
        t, log, v = schema.model_aliases, schema.alias_moves, schema.model_versions
        move = uuid.uuid4().hex
        out: list[AliasMove] = []
        with self.store.transaction(f"moving aliases of {model!r}") as conn:
            current = self._current(conn, model, list(moves))
            for alias, want in (expected or {}).items():
                if current.get(alias) != want:
                    raise StorageError(
                        f"alias {alias!r} of {model!r} is at version {current.get(alias)!r},"
                        f" not {want!r}: it was moved meanwhile; nothing changed"
                    )
            for alias, to in moves.items():
                before = current.get(alias)
                if before == to:
                    continue
                if (
                    to is not None
                    and not conn.execute(
                        select(v.c.version).where(v.c.model == model, v.c.version == to)
                    ).first()
                ):
                    raise StorageError(f"no model version {to!r} in registry {model!r}")
                conn.execute(delete(t).where(t.c.model == model, t.c.alias == alias))
                if to is not None:
                    conn.execute(
                        t.insert().values(model=model, alias=alias, version=to, updated_at=now)
                    )
                values = dict(
                    model=model,
                    move=move,
                    alias=alias,
                    from_version=before,
                    to_version=to,
                    moved_by=by,
                    reason=reason,
                    moved_at=now,
                )
                pk = conn.execute(log.insert().values(**values).returning(log.c.pk)).scalar_one()
                out.append(AliasMove(pk=pk, **values))  # type: ignore[arg-type]
        return out

    def _current(self, conn: Connection, model: str, aliases: list[str]) -> dict[str, str]:
        t = schema.model_aliases
        query = select(t.c.alias, t.c.version).where(t.c.model == model, t.c.alias.in_(aliases))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return {alias: version for alias, version in conn.execute(query)}

    def alias_history(
        self, model: str, *, version: str | None = None, limit: int = 1000
    ) -> list[AliasMove]:
        """Alias moves of ``model`` (those to or from ``version`` when given), oldest first."""
        log = schema.alias_moves
        query = select(log).where(log.c.model == model)
        if version is not None:
            query = query.where((log.c.from_version == version) | (log.c.to_version == version))
        with self.store.connect("reading the alias log") as conn:
            rows = conn.execute(query.order_by(log.c.pk.desc()).limit(limit)).all()
        return [
            AliasMove(
                r.pk,
                r.model,
                r.move,
                r.alias,
                r.from_version,
                r.to_version,
                r.moved_by,
                r.reason,
                r.moved_at,
            )
            for r in reversed(rows)
        ]

    # -- training attempts --------------------------------------------------------------

    def start_training(
        self, model: str, *, trigger: str, reason: str, now: datetime, data_end: datetime | None
    ) -> int:
        t = schema.trainings
        with self.store.transaction(f"recording a training of {model!r}") as conn:
            return int(
                conn.execute(
                    t.insert()
                    .values(
                        model=model,
                        trigger=trigger,
                        reason=reason,
                        started_at=now,
                        outcome="running",
                        data_end=data_end,
                    )
                    .returning(t.c.pk)
                ).scalar_one()
            )

    def finish_training(
        self,
        pk: int,
        *,
        outcome: str,
        now: datetime,
        version: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        t = schema.trainings
        with self.store.transaction("recording a training's outcome") as conn:
            conn.execute(
                update(t)
                .where(t.c.pk == pk)
                .values(outcome=outcome, finished_at=now, version=version, details=_json(details))
            )

    def trainings(self, model: str, limit: int = 50) -> list[Training]:
        """The latest training attempts of ``model``, oldest first."""
        t = schema.trainings
        with self.store.connect("reading training attempts") as conn:
            rows = conn.execute(
                select(t).where(t.c.model == model).order_by(t.c.pk.desc()).limit(limit)
            ).all()
        return [_training(r) for r in reversed(rows)]

    # -- trigger signals ----------------------------------------------------------------

    def signals(
        self,
        model: str,
        *,
        windows: int,
        matured_before: datetime,
        since: datetime | None = None,
    ) -> Signals:
        """What the triggers need, read now: the latest ``windows`` windows' drift and
        performance (those starting at ``since`` or later: the current champion's, when
        the caller knows since when it serves), detections and matured labels since the
        last training."""
        w, wp, d = schema.windows, schema.window_performance, schema.detections
        p, lab = schema.predictions, schema.labels
        trainings = self.trainings(model, limit=1)
        last = trainings[-1] if trainings else None
        query = (
            select(
                w.c.start,
                w.c.end,
                w.c.results,
                wp.c.predictions,
                wp.c.labelled,
                wp.c.state,
                wp.c.realized,
                wp.c.estimated,
            )
            .outerjoin(wp, and_(wp.c.model == w.c.model, wp.c.window_start == w.c.start))
            .where(w.c.model == model)
        )
        if since is not None:
            query = query.where(w.c.start >= since)
        with self.store.connect("reading retrain signals") as conn:
            rows = conn.execute(query.order_by(w.c.start.desc()).limit(windows)).all()
            since = last.started_at if last else None
            found = select(d.c.created_at).where(d.c.model == model)
            if since is not None:
                found = found.where(d.c.created_at > since)
            detections = tuple(conn.execute(found.order_by(d.c.pk)).scalars())
            labelled = (
                select(func.count())
                .select_from(p)
                .join(lab, and_(lab.c.model == p.c.model, lab.c.id == p.c.id))
                .where(p.c.model == model, p.c.ts <= matured_before)
            )
            if last is not None and last.data_end is not None:
                labelled = labelled.where(p.c.ts > last.data_end)
            new_labels = int(conn.execute(labelled).scalar() or 0)
        signals = []
        for r in reversed(rows):
            results = None if r.results is None else WindowResults.from_dict(_decode(r.results))
            performance = None
            if r.state is not None:
                performance = WindowPerformance.from_stored(
                    start=r.start,
                    predictions=r.predictions,
                    labelled=r.labelled,
                    state=r.state,
                    realized=_decode(r.realized),
                    estimated=_decode(r.estimated),
                )
            signals.append(
                WindowSignal(
                    r.start,
                    r.end,
                    None if results is None else results.drift.drifted,
                    r.state,
                    _realized_values(performance),
                    _estimated_values(performance),
                )
            )
        return Signals(tuple(signals), detections, last, new_labels)


def _version_order(v: ModelVersion) -> tuple[int, str]:
    """MLflow versions are integers in text: 10 comes after 9."""
    return (int(v.version), "") if v.version.isdigit() else (1 << 62, v.version)
