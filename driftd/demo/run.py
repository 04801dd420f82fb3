"""``driftd demo``: the card-fraud demo replayed in accelerated time, narrated.

The demo writes a workspace (reference table, baseline model, config, log files), then
replays production hour by hour: predictions and a few malformed lines go to daily
prediction logs, labels arrive hours later in daily label logs. Every ``tick_hours``
simulated hours it runs the daemon's jobs once, exactly as the scheduler would, and
says what driftd did. The stream drifts at a known hour (see :mod:`driftd.demo.data`).
"""

from __future__ import annotations

import pickle
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.sinks import ConsoleSink
from driftd.app import App
from driftd.config import load
from driftd.demo import data
from driftd.demo.serving import DemoServer
from driftd.logs import protect
from driftd.report.demo import weekly_report
from monitor.results import WindowPerformance
from storage.errors import DriftdError

MARKER = ".driftd-demo"
START = datetime(2026, 11, 2, tzinfo=UTC)
LABEL_DELAY_HOURS = (2, 24)  # a label arrives 2 to 24 hours after its prediction

CONFIG = """\
# Written by `driftd demo`. The same file works with `driftd run -c {path}`.
model:
  name: card-fraud
  task: binary
  threshold: 0.5
reference:
  path: reference.csv
  target: {target}
  score_column: score
  prediction_column: prediction
sources:
  predictions:
    - paths: ["logs/predictions-*.jsonl"]
  labels:
    - paths: ["logs/labels-*.jsonl"]
windows:
  size: {window}
drift:
  drift_share: 0.3       # dataset drift when 30% of the columns drift
performance:
  label_delay: 1d        # labels (chargebacks) arrive within a day
  metrics: [roc_auc, accuracy, cost]
  cost: {{fn: 120, fp: 4, currency: EUR}}   # a missed fraud, a blocked good customer
business:                # the weekly report speaks the fraud team's language
  unit: transaction
  positive: fraud
  negative: good transactions
  review_capacity: 500   # transactions the team can review a day
alerts:
  repeat_interval: 1d    # a still-firing incident is re-announced once a (simulated) day
  resolve_after: 2       # two clear windows in a row resolve an incident{slack}
schedule:
  ingest: {{interval: 1m}}
  statistics: {{interval: 5m}}
retrain:
  mode: auto             # the demo trains on its own; a new install only suggests
  triggers:
    drift_windows: null  # drift alone does not retrain here ...
    realized_below: {{roc_auc: 0.8}}   # ... a realized drop on matured labels does
  min_new_labels: 2000
  lookback: 6d
  test_window: 12h       # the final test: the latest matured half day, touched once
  trainer: {{kind: keras, max_epochs: 30}}
shadow:                  # a challenger first answers in shadow, on the rows the champion served
  metric: roc_auc
  guards: [cost]
  min_sample: 2000       # the paired verdict is taken on the first 2,000 labelled rows
  max_duration: 2d
experiment:              # then an A/B test on live traffic
  challenger_share: 0.5  # half of the request ids: a short test for the demo (default 0.1)
  metric: cost           # per transaction, in EUR (performance.cost)
  min_sample: 1000       # labelled rows per arm before any decision
  max_duration: 4d
  policy: auto           # the demo promotes on its own; a new install waits for a person
  bake:                  # then watch the new champion for a day, ready to roll back:
    period: 1d           # its realized ROC AUC may not fall 0.02 below the old champion's
    metric: roc_auc      # (realized performance has no per-row cost to compare with the A/B)
"""


def prepare_workspace(workspace: Path) -> None:
    """An empty workspace; an earlier demo's is replaced, anything else is refused."""
    if workspace.exists() and any(workspace.iterdir()):
        if not (workspace / MARKER).exists():
            raise DriftdError(
                f"{workspace} exists and was not made by `driftd demo`; choose another --workspace"
            )
        shutil.rmtree(workspace)
    (workspace / "logs").mkdir(parents=True)
    (workspace / MARKER).write_text("made by driftd demo; safe to delete\n")


def run_demo(
    workspace: Path,
    *,
    days: int = 12,
    rows_per_hour: int = 400,
    seed: int = 0,
    tick_hours: int = 6,
    drift_at_hour: int | None = None,
    drift_until_hour: int | None = None,
    slack_channel: str | None = None,
    out: Callable[[str], None] = print,  # noqa: T202 - the CLI passes typer.echo
) -> dict[str, object]:
    """Replay ``days`` of production and narrate; returns the final status.

    Alerts go to the console (narrated), or to ``slack_channel`` when given (the bot
    token is read from ``SLACK_BOT_TOKEN`` like any driftd config).
    """
    hours = days * 24
    drift_at = drift_at_hour if drift_at_hour is not None else min(72, hours // 2)
    # by default the change stays: what brings performance back is the retrained model
    # (given, the upstream change is rolled back then, at a window boundary)
    drift_until = drift_until_hour
    workspace = workspace.resolve()
    prepare_workspace(workspace)

    out(f"driftd demo: card-fraud model, {days} simulated days, workspace {workspace}")
    training = data.make_reference(20_000, seed=seed)
    model = data.train_baseline(training, seed=seed)
    (workspace / "models").mkdir()
    with open(workspace / "models" / "1.pkl", "wb") as fh:
        pickle.dump(model, fh)
    # the reference is a held-out validation set with the model's outputs on it
    reference = data.make_reference(10_000, seed=seed + 1000)
    reference["score"] = data.score(model, reference)
    reference["prediction"] = (reference["score"] >= 0.5).astype(int)
    reference.to_csv(workspace / "reference.csv", index=False)
    out(
        f"  baseline model v1 trained on {len(training)} transactions "
        f"({training[data.TARGET].mean():.1%} fraud); reference: {len(reference)} held-out "
        "transactions with the model's scores"
    )
    config_path = workspace / "driftd.yaml"
    config_path.write_text(
        CONFIG.format(
            path=config_path,
            target=data.TARGET,
            window=f"{tick_hours}h",
            slack=f"\n  slack: {{channel: {slack_channel!r}}}" if slack_channel else "",
        )
    )
    out(f"  config: {config_path}")
    out(
        f"  production drifts at hour {drift_at} ({START + timedelta(hours=drift_at):%a %d %b %H:%M}"
        f" UTC): {', '.join(data.DRIFTED_FEATURES)} shift, and fraud changes pattern"
        + (
            "; the change stays"
            if drift_until is None
            else f"; it recovers at hour {drift_until}"
            f" ({START + timedelta(hours=drift_until):%a %d %b %H:%M})"
        )
    )
    out("")

    stream = data.ProductionStream(
        model=model,
        start=START,
        rows_per_hour=rows_per_hour,
        drift_at_hour=drift_at,
        drift_until_hour=drift_until,
        seed=seed,
        label_delay_hours=LABEL_DELAY_HOURS,
    )
    now = START

    def alert(message: str) -> None:
        out("  " + "\n  ".join(("ALERT " + message).splitlines()))

    config = load(config_path)
    protect(*config.secrets.values())
    sink = None if config.alerts.slack.channel else ConsoleSink(write=alert)
    app = App(config, sink=sink, clock=lambda: now).open()
    try:
        server = _register_champion(out, app, workspace / "models" / "1.pkl")
        stream.server = server
        daemon = app.daemon()
        late_hour, late_by = 10, 9  # a client buffers part of one hour and sends it late
        held_back: list[dict[str, object]] = []
        for h in range(hours):
            batch = stream.hour(h)
            day = f"{START + timedelta(hours=h):%Y%m%d}"  # one file per day: rotation
            lines: list[dict[str, object] | bytes] = list(batch.predictions)
            if h == late_hour:
                held_back = batch.predictions[-rows_per_hour // 10 :]
                lines = lines[: -len(held_back)]
            elif h == late_hour + late_by:
                lines += held_back  # late: they update the window they belong to
                lines += batch.predictions[: rows_per_hour // 20]  # a retry: duplicates
            # malformed lines interleaved with good ones, as a buggy client would write them
            for i, bad in enumerate(batch.malformed):
                lines.insert((i + 1) * len(lines) // (len(batch.malformed) + 1), bad)
            data.write_jsonl(workspace / "logs" / f"predictions-{day}.jsonl", lines)
            data.write_jsonl(workspace / "logs" / f"labels-{day}.jsonl", batch.labels)
            if (h + 1) % tick_hours == 0:
                now = START + timedelta(hours=h + 1)
                results = daemon.run_once()
                _narrate(
                    out,
                    now,
                    results,
                    drift=h + 1 == drift_at,
                    recovery=drift_until is not None and h + 1 == drift_until,
                )
                serving = server.refresh()  # as `driftd serve` polls the registry
                if serving:
                    out(f"           {serving}")
                if h + 1 == drift_at + 24:  # a day of drifted windows' labels has come in
                    _review(out, app)
        status = app.status()
        weekly_report(app, START, out)  # the drifted week, in the business's terms
        _summary(out, app, status)
        return status
    finally:
        app.close()


def _narrate(
    out: Callable[[str], None],
    now: datetime,
    results: dict[str, tuple[str, object]],
    *,
    drift: bool,
    recovery: bool,
) -> None:
    outcome, summary = results["ingest"]
    if outcome != "ok" or not isinstance(summary, dict):
        out(f"{now:%a %H:%M}  ingest {outcome}")
        return
    sources = summary["sources"]
    preds, labels = sources.get("predictions", {}), sources.get("labels", {})
    quarantined: Counter[str] = Counter()
    for s in sources.values():
        quarantined.update(s["quarantined"])
    bad = ", ".join(f"{n} {r}" for r, n in sorted(quarantined.items()))
    windows = ", ".join(f"{ts[11:16]}+{n}" for ts, n in summary["windows"].items())
    dups = preds.get("duplicates", 0)
    out(
        f"{now:%a %H:%M}  ingested {preds.get('rows', 0):>5} predictions "
        f"({windows or 'no windows'}), {labels.get('rows', 0):>5} late labels"
        + (f", {dups} duplicates skipped" if dups else "")
        + (f"; quarantined {bad}" if bad else "")
    )
    stats_outcome, stats = results.get("statistics", ("skipped", None))
    if stats_outcome != "ok":
        out(f"           statistics {stats_outcome}")
    elif isinstance(stats, dict) and stats.get("window_summaries"):
        for line in stats["window_summaries"]:
            out(f"           {line}")
    _narrate_retraining(out, results.get("retrain"))
    _narrate_trial(out, results)
    if drift:
        out("           ^ production starts drifting after this tick (ground truth)")
    if recovery:
        out("           ^ production is back to normal after this tick (ground truth)")


def _register_champion(out: Callable[[str], None], app: App, path: Path) -> DemoServer:
    """The model in production becomes version 1, alias champion, in the workspace's
    MLflow store (what `driftd models register` does); from then on the registry's
    champion (and challenger, during an A/B test) serve, as with `driftd serve`."""
    from driftd.cli_serve import registry_source
    from driftd.config_retrain import build_registry

    registry = build_registry(app.config, app.store)
    version = registry.register_existing(
        str(path), reason="the baseline in production", by="driftd demo", alias="champion"
    )
    out(f"  registered the baseline in MLflow as {registry.name} v{version}, alias champion")
    server = DemoServer(registry_source(registry, app.store), share=lambda: _share(app))
    out(f"  {server.describe()}, as `driftd serve` would")
    out("")
    return server


def _narrate_retraining(out: Callable[[str], None], result: tuple[str, object] | None) -> None:
    """What the retrain job decided, and the gates of a training."""
    from driftd.retraining import gate_table

    if result is None:
        return
    outcome, summary = result
    if outcome != "ok" or not isinstance(summary, dict):
        out(f"           retrain {outcome}")
        return
    if summary.get("training") is None:
        return
    fired = "; ".join(f["detail"] for f in summary["fired"])
    out(f"           retraining ({fired}): {summary['outcome']}")
    attempt = summary.get("attempt") or {}
    rows = attempt.get("rows") or {}
    if rows:
        reviewed = sum(p.get("review", 0) for p in (attempt.get("provenance") or {}).values())
        out(
            f"           training set: {rows['train']} train, {rows['validation']} validation, "
            f"{rows['test']} final-test rows; {reviewed} labels from the review queue"
        )
    for line in gate_table(attempt):
        out("             " + line)
    if summary.get("version"):
        out(f"           candidate v{summary['version']} registered in MLflow as challenger")


def _narrate_trial(out: Callable[[str], None], results: dict[str, tuple[str, object]]) -> None:
    """The challenger's shadow comparison and A/B test, one line each while they run
    (their verdicts and decisions are alerts, printed with the others)."""
    outcome, shadow = results.get("shadow", ("skipped", None))
    if outcome != "ok":
        out(f"           shadow {outcome}")
    elif (
        isinstance(shadow, dict)
        and isinstance(shadow.get("shadow"), dict)
        and shadow["shadow"]["rows"]
    ):
        s = shadow["shadow"]
        verdict = str(s.get("verdict", "no evidence")).replace("_", " ")
        out(
            f"           shadow: the challenger answered {shadow.get('scored', 0)} more rows"
            f" ({s['rows']} in all, unseen by anyone); {s['labelled']} matured labels to"
            f" compare on: {verdict}{'' if s.get('final') else ' so far'}"
        )
    outcome, trial = results.get("experiment", ("skipped", None))
    if outcome != "ok":
        out(f"           experiment {outcome}")
    elif isinstance(trial, dict) and trial.get("decision"):
        out(f"           A/B test: {trial['decision']}: {trial['reason']}")


def _summary(out: Callable[[str], None], app: App, status: dict[str, object]) -> None:
    counts = status["counts"]
    assert isinstance(counts, dict)
    out("")
    out(
        f"stored {counts['predictions']} predictions and {counts['labels']} labels, "
        f"quarantined {counts['quarantined']} malformed records (`driftd status` lists them)"
    )
    windows = status["windows"]
    assert isinstance(windows, list)
    if windows:
        last = windows[-1]
        out(
            f"{len(windows)} windows; the latest ({last['start']:%a %H:%M}) has "
            f"{last['predictions']} predictions, {last['label_coverage']:.0%} labelled so far"
        )
        starts = [w["start"] for w in windows]
        performance = app.performance_repository.windows(app.model, len(starts), starts=starts)
        _performance_table(out, performance)
    problems = app.health()
    out("health: " + ("ok" if not problems else "; ".join(problems)))
    out(f"next: {_command()} status -c {app.config.config_path}")


def _performance_table(out: Callable[[str], None], windows: Sequence[WindowPerformance]) -> None:
    """Estimated (from scores, before labels) next to realized (from labels) per window."""

    def value(perf: WindowPerformance, kind: str, metric: str, fmt: str) -> str:
        if kind == "estimated":
            estimated = None if perf.estimated is None else perf.estimated.metrics.get(metric)
            if estimated is None or estimated.value is None:
                return "-"
            return format(estimated.value, fmt) + ("!" if estimated.alert else " ")
        realized = None if perf.realized is None else perf.realized.metrics.get(metric)
        if realized is None or realized.value is None:
            return "-"
        return format(realized.value, fmt) + " "

    out("")
    out("performance per window: estimated from the scores alone (! = alert), realized from labels")
    out("  window     labelled state        AUC est/real     accuracy est/real  est. cost")
    for perf in windows:
        out(
            f"  {perf.start:%a %H:%M}  {perf.coverage:>6.0%}  {perf.state:<11}"
            f"  {value(perf, 'estimated', 'roc_auc', '.3f'):>7} {value(perf, 'realized', 'roc_auc', '.3f'):>7}"
            f"   {value(perf, 'estimated', 'accuracy', '.3f'):>7} {value(perf, 'realized', 'accuracy', '.3f'):>7}"
            f"   {value(perf, 'estimated', 'cost', ',.0f'):>8}"
        )


def _review(out: Callable[[str], None], app: App) -> None:
    """The review queue, and a reviewer's decisions reaching the next training set."""
    repo = app.review_repository
    model = app.model
    pending = repo.items(model, state="pending", limit=100_000)
    reasons = Counter(i.reason for i in pending)
    out(
        f"review queue: {len(pending)} pending ("
        + ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in reasons.most_common())
        + f"), at most {app.config.review.per_window} per window, highest priority first"
    )
    wrong = [i for i in pending if i.reason == "misclassified"][:2]
    if len(wrong) < 2:
        return
    before = repo.training_labels(model)
    now = app.clock()
    # a fraud analyst looks at the two most urgent errors: the first label is right; the
    # second was a chargeback filed by mistake, so the transaction was not fraud after all
    repo.review(model, wrong[0].pk, "confirmed", reviewer="analyst", now=now)
    corrected = 1 - int(wrong[1].label)
    repo.review(model, wrong[1].pk, "relabelled", reviewer="analyst", now=now, new_label=corrected)
    after = {r.id: r for r in repo.training_labels(model)}
    changed = after[wrong[1].prediction_id]
    out(
        f"  an analyst confirmed {wrong[0].prediction_id} and relabelled "
        f"{wrong[1].prediction_id} as {corrected}: the next training set ({len(before)} rows) "
        f"now takes that row's label from the review (label {changed.label}, source "
        f"{changed.source}, kept out of evaluation holdouts)"
    )
    config = app.config.config_path
    out(
        f"  try: {_command()} review list -c {config}; "
        f"{_command()} training-set -c {config} -o training.csv"
    )


def _command() -> str:
    """How to call driftd again: the running executable (e.g. .venv/bin/driftd)."""
    program = Path(sys.argv[0])
    if program.name != "driftd":
        return "driftd"
    try:
        return str(program.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(program)


def _share(app: App) -> float:
    """The A/B split's challenger share (``experiment.challenger_share``)."""
    from driftd.config_experiment import experiment_config

    return experiment_config(app.config).challenger_share
