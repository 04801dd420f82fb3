"""What every ``driftd`` command shares: the typer app, common options, error handling,
and loading the config into an :class:`~driftd.app.App`."""

from __future__ import annotations

import gc
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from driftd.errors import ConfigError
from driftd.logs import protect, setup_logging
from storage.errors import DriftdError

logger = logging.getLogger("driftd")

app = typer.Typer(
    name="driftd",
    help="ML monitoring daemon: ingest prediction logs and labels, watch drift, act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def private_files(ctx: typer.Context) -> None:
    """What driftd writes (database, reports, exports, training sets) can hold personal
    data: every command creates files readable by their owner only, 0600 and
    directories 0700, whatever the inherited umask (a stricter one is kept). Except
    ``init``: the config holds no secrets, and the service's user must read it."""
    if ctx.invoked_subcommand != "init":
        os.umask(os.umask(0o077) | 0o077)


ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="The driftd YAML file.", show_default=True)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]
LogOpt = Annotated[
    str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.", show_default=True)
]


def dump(obj: Any) -> str:
    return orjson.dumps(
        obj, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()


@contextmanager
def errors() -> Any:
    """DriftdErrors become a one-line message and an exit code, not a traceback."""
    try:
        yield
    except ConfigError as exc:
        typer.echo(f"driftd: {exc}", err=True)
        raise typer.Exit(2) from None
    except DriftdError as exc:
        typer.echo(f"driftd: {exc}", err=True)
        raise typer.Exit(1) from None


def load_app(config: Path, log_level: str) -> Any:
    from driftd.app import App
    from driftd.config import load

    setup_logging(log_level.upper())
    loaded = load(config)
    protect(*loaded.secrets.values())
    application = App(loaded)
    freeze_startup()
    return application


_frozen = False


def freeze_startup() -> None:
    """Move what the process holds after starting (modules, config: ~200,000 objects)
    out of the garbage collector's sight, once per process: every full collection
    traversed them again, 0.08 s each, one of them inside a statistics run at 1M rows.
    Collected first, so no garbage is kept."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def checked(application: Any) -> None:
    """Refuse a reference that does not fit the config (a ConfigError, exit 2) before
    any job runs; log what driftd will treat specially."""
    for warning in application.reference.check():
        logger.warning("%s", warning)
