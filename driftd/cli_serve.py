"""``driftd serve``: the reference prediction service (FastAPI + uvicorn).

It loads ``champion`` and ``challenger``, splits requests between them by a hash of the
request id (``experiment.challenger_share``, while the challenger's experiment is in
phase ``ab``; files named under ``serve.models`` split without an experiment), validates
requests against the feature schema and logs every served prediction in driftd's
contract, where ``sources.predictions`` should find it.
"""

from __future__ import annotations

import fnmatch
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftd.cli_common import ConfigOpt, LogOpt, errors
from driftd.errors import ConfigError

if TYPE_CHECKING:
    from driftd.config import Config
    from driftd.serve.config import ServeConfig
    from driftd.serve.models import ModelSource, Registry, RegistrySource
    from storage.store import Store

logger = logging.getLogger("driftd")


def load_config(path: Path) -> tuple[Config, ServeConfig]:
    """driftd's config and its ``serve:`` section (paths resolved against the file's
    directory)."""
    from driftd.config import load
    from driftd.logs import protect

    config = load(path)
    protect(*config.secrets.values())
    return config, config.serve


def model_source(config: Config, serve: ServeConfig, resources: ExitStack) -> ModelSource:
    """Model files when ``serve.models`` names them; else the registry's aliases (its
    store stays open until ``resources`` closes), the challenger serving only while its
    experiment is in phase ``ab``."""
    from driftd.serve.models import FileSource

    if serve.models:
        return FileSource({str(alias): path for alias, path in serve.models.items()})
    from driftd.config_retrain import build_registry
    from storage.store import Store

    config.workspace.mkdir(parents=True, exist_ok=True)
    store = Store(config.storage_url)
    resources.callback(store.dispose)
    store.migrate()
    return registry_source(build_registry(config, store), store)


def registry_source(registry: Registry, store: Store) -> RegistrySource:
    """The registry's champion, and its challenger while the experiment is in phase
    ``ab`` (what ``driftd serve`` and the demo's in-process serving load)."""
    from driftd.serve.models import RegistrySource
    from storage.experiment_state import ExperimentStates

    states = ExperimentStates(store)

    def phase(version: str) -> str | None:
        found = states.get(registry.name, version)
        return None if found is None else found.phase

    return RegistrySource(registry, phase=phase)


def build(config: Config, serve: ServeConfig, resources: ExitStack) -> Any:
    """The ASGI application ``driftd serve`` runs."""
    from driftd.config_experiment import experiment_config
    from driftd.reference import Reference
    from driftd.serve.app import create_app
    from driftd.serve.log import PredictionLog
    from driftd.serve.models import ServedModels
    from driftd.serve.scoring import Predictor

    schema = Reference(config).schema
    if not schema:
        raise ConfigError("schema: driftd serve needs the features: a `schema:` or a reference")
    log = PredictionLog(
        serve.log.path,
        max_bytes=serve.log.max_bytes,
        hourly=serve.log.hourly,
        fsync=serve.log.fsync,
    )
    _check_sources(config, log.glob)
    models = ServedModels(model_source(config, serve, resources))
    models.current  # noqa: B018 - load now: a champion that does not load stops the start
    predictor = Predictor(
        schema=schema,
        models=models,
        log=log,
        challenger_share=experiment_config(config).challenger_share,
        task=config.model.task,
        threshold=config.model.threshold,
    )
    return create_app(
        predictor, max_body_bytes=serve.max_body_bytes, reload_interval=serve.reload_interval
    )


def _check_sources(config: Config, log_glob: str) -> None:
    """Warn when no prediction source would ingest what the service logs."""
    sample = log_glob.replace("*", "20261205T030000Z-0000")
    patterns = [p for s in config.sources.predictions if s.format == "jsonl" for p in s.paths]
    if not any(fnmatch.fnmatch(sample, p) for p in patterns):
        logger.warning(
            "no jsonl source in sources.predictions matches the served log %s (e.g. %s): "
            "add it so driftd ingests what it serves",
            log_glob,
            sample,
        )


def serve(
    config: ConfigOpt = Path("driftd.yaml"),
    host: Annotated[str | None, typer.Option(help="Default: serve.host (127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Default: serve.port (8080).")
    ] = None,
    log_level: LogOpt = "INFO",
) -> None:
    """Serve the champion and the challenger over HTTP, logging every prediction."""
    import os

    from driftd.logs import setup_logging

    # one row per request: OpenMP teams (scikit-learn's gradient boosting) only add
    # latency, and spin for a long time on a busy machine; read when scikit-learn loads
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    setup_logging(log_level.upper())
    with errors():
        try:
            import uvicorn
        except ImportError:
            raise ConfigError(
                "driftd serve needs FastAPI and uvicorn: pip install 'driftd[ui]'"
            ) from None
        loaded, section = load_config(config)
        with ExitStack() as resources:
            application = build(loaded, section, resources)
            uvicorn.run(
                application,
                host=host or section.host,
                port=section.port if port is None else port,
                log_config=None,  # driftd's logging, set up above
                access_log=False,  # every prediction is in the prediction log already
                timeout_graceful_shutdown=30,
            )
