"""``driftd models``: the registry's versions, their lineage and aliases, by hand.

``register`` imports the model already in production so the loop starts from it;
``promote`` and ``rollback`` move aliases as one recorded decision (who, why) in driftd's
append-only alias log, then in MLflow.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, dump, errors
from driftd.display import experiment_lines, experiment_summary
from driftd.logs import protect, setup_logging

if TYPE_CHECKING:
    from retrain.registry import Registry

models_app = typer.Typer(
    help="Model versions in the registry (MLflow): list, show, register, promote, roll back, export.",
    no_args_is_help=True,
)

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why: kept in the alias log.")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who moves the alias (default: your user name).")
]


@contextmanager
def open_registry(config: Path, log_level: str) -> Iterator[Registry]:
    from driftd.config import load
    from driftd.config_retrain import build_registry
    from storage.store import Store

    setup_logging(log_level.upper())
    loaded = load(config)
    protect(*loaded.secrets.values())
    loaded.workspace.mkdir(parents=True, exist_ok=True)
    store = Store(loaded.storage_url)
    try:
        store.migrate()
        yield build_registry(loaded, store)
    finally:
        store.dispose()


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _aliases_of(registry: Registry) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in sorted(registry.aliases().items()):
        out.setdefault(version, []).append(alias)
    return out


@models_app.command("list")
def models_list(
    config: ConfigOpt = Path("driftd.yaml"), json: JsonOpt = False, log_level: LogOpt = "WARNING"
) -> None:
    """Versions with their aliases, lineage (parent) and what triggered them."""
    with errors(), open_registry(config, log_level) as registry:
        versions = registry.versions()
        aliases = _aliases_of(registry)
    rows = [
        {
            "version": v.version,
            "aliases": aliases.get(v.version, []),
            "parent": v.parent_version,
            "framework": v.framework,
            "trigger": v.details.get("trigger"),
            "created_at": v.created_at,
            "sha256": v.digest,
        }
        for v in versions
    ]
    if json:
        typer.echo(dump({"model": registry.name, "versions": rows}))
        return
    if not rows:
        typer.echo(f"no versions of {registry.name!r} yet (driftd models register PATH)")
    for r in reversed(rows):
        tags = f" [{', '.join(r['aliases'])}]" if r["aliases"] else ""
        parent = f" from v{r['parent']}" if r["parent"] else ""
        typer.echo(
            f"v{r['version']}{tags} {r['framework']} {r['created_at']:%Y-%m-%d %H:%M}"
            f" {r['trigger']}{parent} sha256 {(r['sha256'] or '?')[:12]}"
        )


@models_app.command("show")
def models_show(
    version: Annotated[str, typer.Argument(help="A version number or an alias.")],
    config: ConfigOpt = Path("driftd.yaml"),
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """A version's metrics, gates, trigger, digest, and its alias history."""
    with errors(), open_registry(config, log_level) as registry:
        number = registry.resolve(version)
        record = registry.record(number)
        history = registry.repository.alias_history(registry.name, version=number)
        aliases = _aliases_of(registry).get(number, [])
        experiment = _experiment_of(registry, number)
    moves = [
        {
            "at": m.moved_at,
            "alias": m.alias,
            "from": m.from_version,
            "to": m.to_version,
            "by": m.moved_by,
            "reason": m.reason,
        }
        for m in history
    ]
    shown: dict[str, Any] = {
        "model": registry.name,
        "version": number,
        "aliases": aliases,
        "parent": record.parent_version,
        "framework": record.framework,
        "created_at": record.created_at,
        "sha256": record.digest,
        "mlflow_run": record.run_id,
        "trigger": record.details.get("trigger"),
        "reason": record.details.get("reason"),
        "window": record.details.get("window"),
        "rows": record.details.get("rows"),
        "metrics": record.metrics,
        "gates": record.details.get("gates"),
        "params": record.params,
        "alias_history": moves,
        "experiment": experiment,
    }
    if json:
        typer.echo(dump(shown))
        return
    for key in ("version", "aliases", "parent", "framework", "created_at", "sha256", "mlflow_run"):
        typer.echo(f"{key}: {shown[key]}")
    typer.echo(f"trigger: {shown['trigger']}: {shown['reason']}")
    if shown["window"]:
        typer.echo(f"training window: {shown['window'][0]} .. {shown['window'][1]}")
    if shown["rows"]:
        typer.echo("rows: " + ", ".join(f"{k} {n}" for k, n in shown["rows"].items()))
    for name, value in sorted(record.metrics.items()):
        typer.echo(f"metric {name}: {value:.4g}")
    for name, gate in sorted((shown["gates"] or {}).items()):
        verdict = "passed" if gate.get("passed") else "FAILED"
        typer.echo(f"gate {name}: {verdict}" + (f" ({gate['value']})" if "value" in gate else ""))
    for m in moves:
        typer.echo(
            f"{m['at']:%Y-%m-%d %H:%M} {m['alias']}: v{m['from'] or '-'} -> v{m['to'] or '-'}"
            f" by {m['by']}: {m['reason']}"
        )
    for line in experiment_lines(experiment):
        typer.echo(line)


def _experiment_of(registry: Registry, version: str) -> dict[str, Any] | None:
    """The experiment of ``version`` as challenger (phase, shadow verdict), if it had one."""
    from storage.experiment_state import ExperimentStates

    found = ExperimentStates(registry.repository.store).get(registry.name, version)
    return experiment_summary(found)


def _print_moves(moves: list[Any]) -> None:
    for m in moves:
        typer.echo(f"{m.alias}: v{m.from_version or '-'} -> v{m.to_version or '-'}")


@models_app.command("register")
def models_register(
    source: Annotated[
        str, typer.Argument(help="A .skops/.pkl/.joblib/.keras file or an MLflow model URI.")
    ],
    alias: Annotated[
        str, typer.Option(help="champion, challenger, previous, or none.")
    ] = "champion",
    reason: Annotated[str, typer.Option(help="Why: kept in the alias log.")] = (
        "the model in production when driftd started"
    ),
    by: ByOpt = None,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """Import an existing model as a new version (so the loop starts from production)."""
    with errors(), open_registry(config, log_level) as registry:
        version = registry.register_existing(
            source, reason=reason, by=_who(by), alias=None if alias == "none" else alias
        )
        digest = registry.record(version).digest or ""
    typer.echo(f"registered {registry.name} v{version} (sha256 {digest[:12]})")
    if alias != "none":
        typer.echo(f"{alias}: v{version}")


@models_app.command("promote")
def models_promote(
    reason: ReasonOpt,
    version: Annotated[
        str | None, typer.Argument(help="The version to promote (default: the challenger).")
    ] = None,
    by: ByOpt = None,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """VERSION (default: the challenger) becomes champion; the champion becomes previous."""
    with errors(), open_registry(config, log_level) as registry:
        moves = registry.promote(version, by=_who(by), reason=reason)
    _print_moves(moves)


@models_app.command("rollback")
def models_rollback(
    reason: ReasonOpt,
    by: ByOpt = None,
    config: ConfigOpt = Path("driftd.yaml"),
    log_level: LogOpt = "WARNING",
) -> None:
    """The previous champion serves again."""
    with errors(), open_registry(config, log_level) as registry:
        moves = registry.rollback(by=_who(by), reason=reason)
    _print_moves(moves)
