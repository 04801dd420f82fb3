"""``driftd models export``: a registered Keras model as a SavedModel and TensorFlow Lite
files, each checked against the Keras model on held-out rows, the checks logged to the
version's MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftd.cli_common import ConfigOpt, JsonOpt, LogOpt, checked, dump, errors, load_app

if TYPE_CHECKING:
    from retrain.export import Format

FORMATS: dict[str, tuple[Format, ...]] = {
    "saved-model": ("saved_model",),
    "tflite-float16": ("tflite_float16",),
    "tflite-int8": ("tflite_int8",),
    "all": ("saved_model", "tflite_float16", "tflite_int8"),
}
HOLDOUT_ROWS = 5000


def models_export(
    version: Annotated[str, typer.Argument(help="A version, or champion / challenger.")],
    format_: Annotated[
        str, typer.Option("--format", help="saved-model, tflite-float16, tflite-int8 or all.")
    ] = "all",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Default: <workspace>/exports/V.")
    ] = None,
    config: ConfigOpt = Path("driftd.yaml"),
    json: JsonOpt = False,
    log_level: LogOpt = "WARNING",
) -> None:
    """Export a registered Keras model for a serving target; exit 1 if a check fails."""
    from driftd.config_retrain import build_registry
    from driftd.retraining import specs
    from retrain.dataset import load_production
    from retrain.export import ExportSpec, export_keras
    from retrain.trainers import Candidate

    if format_ not in FORMATS:
        typer.echo(f"driftd: --format {format_!r}: choose {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    with errors():
        application = load_app(config, log_level)
        with application:
            checked(application)
            registry = build_registry(application.config, application.store)
            loaded = registry.load(version)
            dataset, _trainer, _gates = specs(application)
            candidate = Candidate(
                framework=loaded.framework,  # type: ignore[arg-type]
                native=loaded.native,
                params={},
                history={},
                features=dataset.features,
                target=dataset.target,
            )
            reference = application.reference.frame()
            holdout, source = _holdout(
                load_production(
                    application.store, application.model, dataset, now=application.clock()
                ),
                reference,
                dataset.target,
            )
            directory = output or application.config.workspace / "exports" / loaded.version
            results = export_keras(
                candidate,
                directory,
                reference=reference,
                holdout=holdout,
                spec=ExportSpec(
                    threshold=application.config.model.threshold, formats=FORMATS[format_]
                ),
            )
            record = registry.record(loaded.version)
            report = {
                "version": loaded.version,
                "holdout": source,
                "exports": [r.__dict__ for r in results],
            }
            if record.run_id:
                registry.client.log_dict(record.run_id, report, f"exports/{format_}.json")
                for r in results:
                    registry.client.log_metric(
                        record.run_id, f"export_{r.format}_agreement", r.agreement
                    )
                    registry.client.log_metric(
                        record.run_id, f"export_{r.format}_bytes", r.size_bytes
                    )
    if json:
        typer.echo(dump(report))
    else:
        typer.echo(f"v{loaded.version} on {source}:")
        for r in results:
            typer.echo(
                f"  {r.format:<15} {r.size_bytes:>10,} bytes ({r.size_ratio:.0%} of Keras)  "
                f"agreement {r.agreement:.2%}  ROC AUC delta {r.roc_auc_delta:+.4f}  "
                + ("ok" if r.passed else f"FAILED: {r.reason}")
            )
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def _holdout(production: Any, reference: Any, target: str) -> tuple[Any, str]:
    """The latest labelled production rows (rows the candidate was tested on, never
    trained on, when it came from driftd's retraining), else the reference's last fifth."""
    labelled = production[production[target].notna()] if target in production else production[:0]
    if len(labelled) >= 200:
        rows = labelled.tail(HOLDOUT_ROWS)
        return rows.reset_index(drop=True), f"the latest {len(rows)} labelled production rows"
    tail = reference.tail(max(200, len(reference) // 5))
    source = f"the reference's last {len(tail)} rows (no labelled production rows in the lookback"
    return tail.reset_index(drop=True), source + "; a retrained model may have trained on them)"
