"""``driftd ab status``: where the challenger's experiment is, and its numbers.

It reads and never moves anything: the phase, the split the serving side must apply
(``serving``: whether the challenger gets live traffic now, and its share, which is
what a team with its own serving reads from ``--json``), the served counts and the
sample ratio check, the labelled rows per arm, the primary metric's and the
guardrails' current intervals, the decision with its reason, and the bake.

During the A/B phase the analysis is computed now, on the rows in the store (the same
computation as the experiment job's, without recording it); in the other phases the
figures are those the job recorded last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, dump, errors, load_app

ab_app = typer.Typer(help="The challenger's A/B test: phase, split, numbers.", no_args_is_help=True)


def ab_document(app: Any) -> dict[str, Any]:
    """``driftd ab status --json``: see the module docstring."""
    from driftd.config_experiment import experiment_config
    from driftd.experimenting import reading
    from driftd.experiments import registry
    from storage.experiment_state import AB, ExperimentStates

    cfg = experiment_config(app.config)
    reg = registry(app)
    aliases = reg.aliases()
    history = ExperimentStates(app.store).history(reg.name, limit=1)
    exp = history[0] if history else None
    ab: dict[str, Any] | None = None
    live = False
    if exp is not None:
        ab = dict(exp.details.get("ab") or {}) or None
        if exp.phase == AB:
            decision, read = reading(app, exp, cfg)
            ab, live = decision.to_dict() | read, True
    serves = exp is not None and exp.phase == AB and aliases.get("challenger") == exp.challenger
    return {
        "model": reg.name,
        "aliases": aliases,
        "policy": cfg.policy,
        "serving": {
            "challenger_serves": serves,
            "challenger_share": cfg.challenger_share if serves else 0.0,
            "configured_share": cfg.challenger_share,
            "champion": aliases.get("champion"),
            "challenger": exp.challenger if serves and exp is not None else None,
        },
        "experiment": None
        if exp is None
        else {k: v for k, v in exp.to_dict().items() if k != "details"},
        "ab": ab,
        "ab_live": live,
        "shadow": None if exp is None else exp.details.get("shadow"),
        "bake": None if exp is None else exp.details.get("bake"),
    }


def _interval(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    return (
        f"{m['metric']}: challenger {m['challenger']:.4g} (n {m['n_challenger']}) vs champion "
        f"{m['champion']:.4g} (n {m['n_champion']}), difference {m['difference']:+.4g} in "
        f"[{_bound(m['lower'])}, {_bound(m['upper'])}]"
        + (f", margin {m['margin']:g}" if m.get("margin") else "")
        + (" BETTER" if m.get("better") else " WORSE" if m.get("worse") else "")
    )


def _bound(x: float | None) -> str:
    return "-inf/+inf" if x is None else f"{x:+.4g}"


def print_ab(doc: dict[str, Any]) -> None:
    exp, serving = doc["experiment"], doc["serving"]
    aliases = ", ".join(f"{a} v{v}" for a, v in doc["aliases"].items())
    typer.echo(f"model {doc['model']}: {aliases or 'no aliases yet'}")
    if exp is None:
        typer.echo(
            "no experiment yet: a new challenger starts one (driftd retrain, or "
            "driftd models register FILE --alias challenger)"
        )
        return
    typer.echo(
        f"experiment of v{exp['challenger']} (against v{exp['champion']}): phase {exp['phase']}"
        f" since {exp['phase_at']}; policy {doc['policy']}"
    )
    if exp["reason"]:
        typer.echo(f"  {exp['reason']}")
    share = serving["configured_share"]
    typer.echo(
        f"split: challenger {share:g} / champion {1 - share:g}; the challenger "
        + ("serves live traffic now" if serving["challenger_serves"] else "gets no live traffic")
    )
    ab = doc["ab"]
    if ab:
        when = "now" if doc["ab_live"] else f"as of {ab.get('at')}"
        typer.echo(f"A/B ({when}, rows since {ab.get('since')}):")
        served = ", ".join(f"{k} {v}" for k, v in sorted(ab.get("served", {}).items()))
        srm = ab.get("srm") or {}
        p = srm.get("p_value")
        typer.echo(
            f"  served: {served or 'none'}; sample ratio p-value "
            + ("not checked yet" if p is None else f"{p:.3g}")
            + f" (stops below {srm.get('threshold')})"
        )
        for arm, c in sorted((ab.get("labelled") or {}).items()):
            typer.echo(f"  {arm}: {c['labelled']} labelled of {c['matured']} matured rows")
        typer.echo(f"  primary {_interval(ab.get('primary'))}")
        for g in ab.get("guardrails") or []:
            typer.echo(f"  guardrail {_interval(g)}")
        typer.echo(f"  decision: {ab.get('action')}: {ab.get('reason')}")
    bake = doc["bake"]
    if bake:
        typer.echo(
            f"bake: since {bake['promoted_at']}, ends {bake['ends_at']}, {bake['windows']} window(s)"
        )
        for w in bake.get("watches") or []:
            state = "BREACHED" if w["breached"] else "ok"
            value = "no reading yet" if w["value"] is None else f"{w['value']:.4g}"
            bounds = "" if w["lower"] is None else f" [{w['lower']:.4g}, {w['upper']:.4g}]"
            side = ">=" if w["higher_is_better"] else "<="
            typer.echo(
                f"  {w['source']} {w['metric']}: {value}{bounds} on {w['n']} rows, limit "
                f"{side} {w['limit']:.4g}: {state}"
            )
        for u in bake.get("unwatched") or []:
            typer.echo(f"  not watched: {u}")


@ab_app.command("status")
def ab_status(
    config: ConfigOpt = Path("driftd.yaml"), json: JsonOpt = False, log_level: LogOpt = "WARNING"
) -> None:
    """Phase, split, served counts, SRM p-value, labelled rows, intervals, decision, bake."""
    with errors():
        application = load_app(config, log_level)
        with application:
            doc = ab_document(application)
    if json:
        typer.echo(dump(doc))
    else:
        print_ab(doc)
