"""The model registry is MLflow; driftd records what it must be able to prove.

Each training is an MLflow run (params, metrics, gate results, trigger, training-set
window and row counts, driftd's version, the parent version, the artifact's SHA-256 as
a tag) whose model is registered as a version with the proper flavor: ``mlflow.sklearn``
(serialized with skops, not pickle) or ``mlflow.keras``. Aliases ``champion``,
``challenger`` and ``previous`` are MLflow aliases.

driftd's own store (:class:`~storage.models.ModelRepository`) keeps each version's
artifact digest and the append-only log of alias moves, and is the authority on where
an alias points: :meth:`Registry.load` resolves aliases there, downloads the artifact,
checks its digest and refuses to load on a mismatch, so a hand edit in MLflow can
neither change what driftd serves silently nor hide a move from the audit log.

mlflow is imported lazily (retrain.flavors, retrain.importing), telemetry disabled.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain.errors import RetrainError
from retrain.flavors import (
    LoadedModel,
    directory_digest,
    driftd_version,
    feature_names,
    import_mlflow,
    load_model,
    log_model,
)
from storage.models import AliasMove, ModelRepository, ModelVersion

logger = logging.getLogger(__name__)

ALIASES = ("champion", "challenger", "previous")
DIGEST_TAG = "driftd.sha256"


@dataclass(frozen=True)
class TrainingRun:
    """What a training produced and why, as the MLflow run records it."""

    trigger: str  # drift, realized, estimated, detection, schedule, manual, import
    reason: str
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    gates: Mapping[str, Mapping[str, Any]]  # gate -> {"passed": bool, "value": ...}
    window: tuple[datetime, datetime] | None  # the training set's production rows
    rows: Mapping[str, int]  # rows per split: train, validation, test
    parent: str | None  # the version it was trained to replace (the champion)


class Registry:
    """MLflow tracking + registry for one model name, with driftd's record beside it."""

    def __init__(
        self,
        *,
        name: str,
        tracking_uri: str,
        repository: ModelRepository,
        artifact_location: str | None = None,
        scratch: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.tracking_uri = tracking_uri
        self.repository = repository
        self.artifact_location = artifact_location
        self.scratch = scratch
        self.clock = clock
        self._client: Any = None

    def __repr__(self) -> str:
        return f"Registry({self.name!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            mlflow = import_mlflow()
            self._client = mlflow.MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    def _experiment(self) -> str:
        name = f"driftd/{self.name}"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(self.client.create_experiment(name, artifact_location=self.artifact_location))

    # -- logging and registering --------------------------------------------------------

    def log_training(
        self, candidate: Any, training: TrainingRun, *, register: bool = True
    ) -> str | None:
        """Log ``candidate`` (``framework`` and fitted ``native``) as an MLflow run and,
        when ``register``, as a new version; returns the version (None if not registered)."""
        mlflow = self._with_uris()
        framework = candidate.framework
        try:
            with mlflow.start_run(experiment_id=self._experiment()) as run:
                self._log_run(mlflow, training, framework)
                info = log_model(mlflow, framework, candidate.native)
                with tempfile.TemporaryDirectory(dir=self._scratch()) as tmp:
                    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=tmp))
                    digest = directory_digest(local)
                mlflow.set_tag(DIGEST_TAG, digest)
                if not register:
                    return None
                version = self._create_version(info, run.info.run_id, digest, training)
        except RetrainError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds: translate
            raise RetrainError(
                f"logging a {framework} model to MLflow for {self.name!r} failed: {exc}"
            ) from exc
        self.repository.add_version(
            ModelVersion(
                model=self.name,
                version=version,
                status="candidate",
                uri=f"models:/{self.name}/{version}",
                framework=framework,
                parent_version=training.parent,
                digest=digest,
                run_id=run.info.run_id,
                metrics=dict(training.metrics),
                params=dict(training.params),
                details=_details(training, feature_names(framework, candidate.native)),
                created_at=self.clock(),
            )
        )
        logger.info(
            "registered %s version %s (%s, sha256 %s)", self.name, version, framework, digest[:12]
        )
        return version

    def _with_uris(self) -> Any:
        mlflow = import_mlflow()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def _scratch(self) -> str | None:
        if self.scratch is None:
            return None
        self.scratch.mkdir(parents=True, exist_ok=True)
        return str(self.scratch)

    def _log_run(self, mlflow: Any, training: TrainingRun, framework: str) -> None:
        params = {f"trainer.{k}": v for k, v in training.params.items()}
        params |= {f"rows.{k}": n for k, n in training.rows.items()}
        if training.window is not None:
            params |= {
                "window.start": training.window[0].isoformat(),
                "window.end": training.window[1].isoformat(),
            }
        mlflow.log_params(params)
        metrics = dict(training.metrics)
        for gate, result in training.gates.items():
            value = result.get("value")
            if isinstance(value, int | float):
                metrics[f"gate.{gate}"] = float(value)
        if metrics:
            mlflow.log_metrics(metrics)
        mlflow.set_tags(
            {
                "driftd.trigger": training.trigger,
                "driftd.reason": training.reason[:5000],
                "driftd.version": driftd_version(),
                "driftd.parent_version": training.parent or "",
                "driftd.framework": framework,
            }
            | {
                f"driftd.gate.{g}": "passed" if r.get("passed") else "failed"
                for g, r in training.gates.items()
            }
        )
        mlflow.log_dict({k: dict(v) for k, v in training.gates.items()}, "gates.json")

    def _create_version(self, info: Any, run_id: str, digest: str, training: TrainingRun) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(self.name, description="managed by driftd")
        mv = self.client.create_model_version(
            self.name,
            source=info.model_uri,
            run_id=run_id,
            model_id=info.model_id,
            tags={DIGEST_TAG: digest, "driftd.trigger": training.trigger},
        )
        return str(mv.version)

    def register_existing(
        self, source: str, *, reason: str, by: str, alias: str | None = "champion"
    ) -> str:
        """Import a model already in production (a scikit-learn pickle or skops file, a
        Keras ``.keras`` file, or an MLflow model URI) as a new version, and point
        ``alias`` at it, so the loop starts from what is served."""
        from retrain.importing import read_model

        framework, native = read_model(
            source, tracking_uri=self.tracking_uri, scratch=self._scratch()
        )
        candidate = _Candidate(framework, native)
        version = self.log_training(
            candidate,
            TrainingRun(
                "import",
                f"imported from {source}: {reason}",
                {"source": source},
                {},
                {},
                None,
                {},
                None,
            ),
        )
        assert version is not None
        if alias is not None:
            self.move({alias: version}, by=by, reason=reason)
        return version

    # -- aliases ------------------------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        return self.repository.aliases(self.name)

    def move(
        self,
        moves: Mapping[str, str | None],
        *,
        by: str,
        reason: str,
        expected: Mapping[str, str | None] | None = None,
    ) -> list[AliasMove]:
        """Move aliases as one recorded decision: driftd's log first (the authority),
        then MLflow; a failure on the MLflow side is repaired by the next move."""
        unknown = set(moves) - set(ALIASES)
        if unknown:
            raise RetrainError(
                f"unknown alias(es) {sorted(unknown)} for {self.name!r}; use {', '.join(ALIASES)}"
            )
        done = self.repository.move_aliases(
            self.name, moves, by=by, reason=reason, now=self.clock(), expected=expected
        )
        self.sync_aliases()
        return done

    def sync_aliases(self) -> None:
        """Make MLflow's aliases what driftd's record says."""
        try:
            current = self.client.get_registered_model(self.name).aliases
            wanted = self.aliases()
            for alias in ALIASES:
                if alias in wanted and str(current.get(alias)) != wanted[alias]:
                    self.client.set_registered_model_alias(self.name, alias, wanted[alias])
                elif alias not in wanted and alias in current:
                    self.client.delete_registered_model_alias(self.name, alias)
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds: translate
            raise RetrainError(
                f"aliases of {self.name!r} are recorded in driftd but MLflow was not updated: {exc}"
            ) from exc

    def promote(self, version: str | None = None, *, by: str, reason: str) -> list[AliasMove]:
        """``version`` (default: the challenger) becomes champion, the champion becomes
        previous, the challenger alias is cleared when it was promoted."""
        aliases = self.aliases()
        target = version or aliases.get("challenger")
        if target is None:
            raise RetrainError(
                f"no challenger to promote in registry {self.name!r}; name a version"
            )
        self.record(target)
        if aliases.get("champion") == target:
            raise RetrainError(f"version {target!r} is already the champion of {self.name!r}")
        moves: dict[str, str | None] = {"champion": target, "previous": aliases.get("champion")}
        if aliases.get("challenger") == target:
            moves["challenger"] = None
        if moves["previous"] is None:
            del moves["previous"]
        expected = {a: aliases.get(a) for a in ("champion", "challenger")}
        return self.move(moves, by=by, reason=reason, expected=expected)

    def rollback(self, *, by: str, reason: str) -> list[AliasMove]:
        """The previous champion serves again; the rolled-back version loses its alias."""
        aliases = self.aliases()
        previous = aliases.get("previous")
        if previous is None:
            raise RetrainError(f"no previous version to roll back to in registry {self.name!r}")
        expected = {a: aliases.get(a) for a in ("champion", "previous")}
        return self.move(
            {"champion": previous, "previous": None}, by=by, reason=reason, expected=expected
        )

    # -- loading ------------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """A version number for an alias or a version."""
        if ref in ALIASES:
            version = self.aliases().get(ref)
            if version is None:
                raise RetrainError(f"alias {ref!r} is not set in registry {self.name!r}")
            return version
        self.record(ref)
        return ref

    def record(self, version: str) -> ModelVersion:
        found = self.repository.version(self.name, version)
        if found is None:
            raise RetrainError(f"no model version {version!r} in registry {self.name!r}")
        return found

    def load(self, ref: str) -> LoadedModel:
        """Download version or alias ``ref``, check its SHA-256 against driftd's record
        and load it; a mismatch refuses to load (RetrainError)."""
        record = self.record(self.resolve(ref))
        mlflow = self._with_uris()
        uri = f"models:/{self.name}/{record.version}"
        try:
            with tempfile.TemporaryDirectory(dir=self._scratch()) as tmp:
                local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))
                digest = directory_digest(local)
                if digest != record.digest:
                    raise RetrainError(
                        f"model version {record.version!r} of {self.name!r} was altered: its artifact"
                        f" has SHA-256 {digest}, driftd registered {record.digest}; refusing to load it"
                    )
                native = load_model(mlflow, record.framework or "sklearn", str(local))
        except RetrainError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds: translate
            raise RetrainError(
                f"cannot load model version {record.version!r} of {self.name!r}: {exc}"
            ) from exc
        return LoadedModel(record.framework or "sklearn", native, record.version, digest)

    def versions(self) -> list[ModelVersion]:
        return self.repository.versions(self.name)


@dataclass(frozen=True)
class _Candidate:
    framework: str
    native: Any


def _details(training: TrainingRun, features: Sequence[str] | None) -> dict[str, Any]:
    return {
        "trigger": training.trigger,
        "reason": training.reason,
        "gates": {k: dict(v) for k, v in training.gates.items()},
        "window": None if training.window is None else [t.isoformat() for t in training.window],
        "rows": dict(training.rows),
        "features": None if features is None else list(features),
        "driftd_version": driftd_version(),
    }
