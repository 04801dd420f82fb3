"""What ``driftd serve`` scores with: the champion and the challenger, reloaded when an
alias moves.

A :class:`ModelSource` says which models the aliases name now (``etag``, cheap) and loads
them (``load``, slow). :class:`ServedModels` holds the loaded pair and swaps it for a new
one when the source's etag changes, from a background thread: requests never wait for a
load, and a failed reload keeps the models that serve. Two sources: :class:`FileSource`
(model files by alias) and :class:`RegistrySource` (the registry's aliases).
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from storage.errors import DriftdError

logger = logging.getLogger(__name__)

ALIASES = ("champion", "challenger")
AB_PHASE = "ab"  # the experiment phase in which the challenger serves live traffic


class ScoringModel(Protocol):
    """A loaded model version: the registry's ``LoadedModel`` is one."""

    @property
    def version(self) -> str: ...

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Positive-class scores (binary), a probability matrix (multiclass) or values
        (regression), one per row of ``frame``."""
        ...


@dataclass(frozen=True)
class Loaded:
    """The models serving together, and the etag of the aliases they were loaded for."""

    etag: str
    champion: ScoringModel
    challenger: ScoringModel | None = None


class ModelSource(Protocol):
    def etag(self) -> str:
        """Changes when an alias moves (or a model file changes); cheap to ask often."""
        ...

    def load(self) -> Loaded:
        """The models the aliases name now; raises DriftdError when there is no champion."""
        ...


class ServeError(DriftdError):
    """The service cannot start or cannot load its models."""


@dataclass(frozen=True)
class SklearnModel:
    """A scikit-learn estimator (or pipeline) with a version."""

    native: Any
    version: str

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        columns = getattr(self.native, "feature_names_in_", None)
        data = frame[list(columns)] if columns is not None else frame
        if not hasattr(self.native, "predict_proba"):
            return np.asarray(self.native.predict(data), dtype=float)
        proba = np.asarray(self.native.predict_proba(data), dtype=float)
        return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba


class FileSource:
    """Model files by alias: pickles or joblib files of scikit-learn models. Loading a
    pickle runs its code: name only files you trust. A model's version is the first 12
    hex digits of its file's SHA-256."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        if "champion" not in files:
            raise ServeError("serve.models: no champion file")
        self.files = dict(files)

    def etag(self) -> str:
        parts = []
        for alias in ALIASES:
            path = self.files.get(alias)
            if path is None:
                continue
            try:
                st = path.stat()
            except OSError:
                parts.append(f"{alias}=missing")
                continue
            parts.append(f"{alias}={st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
        return ";".join(parts)

    def load(self) -> Loaded:
        etag = self.etag()
        models = {alias: self._load(alias, path) for alias, path in self.files.items()}
        return Loaded(etag, models["champion"], models.get("challenger"))

    @staticmethod
    def _load(alias: str, path: Path) -> SklearnModel:
        import joblib

        try:
            data = path.read_bytes()  # once: the version is that of what is loaded
            native = joblib.load(io.BytesIO(data))
        except FileNotFoundError:
            raise ServeError(f"serve.models.{alias}: no file {str(path)!r}") from None
        except Exception as exc:  # noqa: BLE001 - unpickling raises anything: translate
            raise ServeError(f"serve.models.{alias}: cannot load {str(path)!r}: {exc}") from exc
        return SklearnModel(native, hashlib.sha256(data).hexdigest()[:12])


class Registry(Protocol):
    """What :class:`RegistrySource` needs of ``retrain.registry.Registry``."""

    name: str

    def aliases(self) -> dict[str, str]: ...

    def load(self, ref: str) -> ScoringModel: ...


class RegistrySource:
    """The registry's ``champion`` and ``challenger``. Versions already loaded are kept,
    so moving one alias loads one model.

    ``phase`` (when given) says which phase the experiment of a challenger version is in
    (None: it has none yet). The challenger then serves live traffic only in phase
    ``ab``: in shadow it answers nobody, after a stop, a rejection or a promotion it is
    not a challenger any more. The phase is part of the etag, so the reload notices a
    phase change as it notices an alias move.
    """

    def __init__(
        self, registry: Registry, *, phase: Callable[[str], str | None] | None = None
    ) -> None:
        self.registry = registry
        self.phase = phase
        self._cache: dict[str, ScoringModel] = {}

    def _versions(self) -> dict[str, str]:
        aliases = self.registry.aliases()
        versions = {a: aliases[a] for a in ALIASES if aliases.get(a)}
        challenger = versions.get("challenger")
        if challenger is not None and self.phase is not None:
            phase = self.phase(challenger)
            if phase != AB_PHASE:
                del versions["challenger"]
                versions["held"] = f"{challenger}:{phase or 'none'}"
        return versions

    def etag(self) -> str:
        return ";".join(f"{a}={v}" for a, v in self._versions().items())

    def load(self) -> Loaded:
        versions = self._versions()
        if "champion" not in versions:
            raise ServeError(
                f"registry {self.registry.name!r} has no champion to serve: register one "
                "(driftd models register FILE) or name a file under serve.models"
            )
        etag = ";".join(f"{a}={v}" for a, v in versions.items())
        served = {a: v for a, v in versions.items() if a in ALIASES}
        models = {v: self._cache.get(v) or self.registry.load(v) for v in served.values()}
        self._cache = models
        challenger = served.get("challenger")
        return Loaded(etag, models[served["champion"]], models[challenger] if challenger else None)


class ServedModels:
    """The pair that serves now; :meth:`refresh` swaps in a new pair when an alias moved."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self._current: Loaded | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> Loaded:
        if self._current is None:
            with self._refresh_lock:
                if self._current is None:
                    self._current = self.source.load()
                    self._log(self._current)
        return self._current

    def refresh(self) -> bool:
        """Reload when the source's etag changed; whether the models changed. A failure
        is logged and the models that serve keep serving."""
        with self._refresh_lock:
            try:
                if self._current is not None and self.source.etag() == self._current.etag:
                    return False
                loaded = self.source.load()
            except Exception:  # noqa: BLE001 - keep serving what works, say why
                logger.exception("could not reload the models; the loaded ones keep serving")
                return False
            changed = self._current is None or loaded.etag != self._current.etag
            self._current = loaded
            if changed:
                self._log(loaded)
            return changed

    @staticmethod
    def _log(loaded: Loaded) -> None:
        challenger = loaded.challenger.version if loaded.challenger else "none"
        logger.info("serving champion %s, challenger %s", loaded.champion.version, challenger)

    def start(self, interval: timedelta) -> None:
        """Look for alias moves every ``interval``, from a daemon thread."""
        self.current  # noqa: B018 - load now: a start without a champion fails here
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, args=(interval.total_seconds(),), name="driftd-serve-reload"
        )
        self._thread.daemon = True
        self._thread.start()

    def _poll(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
