"""The daemon's drift path against Evidently's DataDriftPreset: time, peak memory, scores.

    python bench/drift_vs_evidently.py [--rows 1000000] [--quick] [--seed 20261128]
                                       [--thresholds calibrated|evidently] [--keep]

Generates a reference and a current table of ``--rows`` rows each (``--quick``: 100,000;
25 columns, see ``bench/common.py``), then, each step in its own fresh interpreter:

1. setup (not timed, its CPU printed): the current rows are written as a JSON Lines
   prediction log (all in one daily window) and ingested by ``App.ingest()`` into a SQLite
   store, as the daemon stores them: the rows, and their feature blocks (a columnar copy
   that the fold reads and then deletes, ``monitor/blocks.py``) with a run of each numeric
   feature's values beside each block (which stays: the window's values for exact
   scores); the encoding's CPU is printed apart;
2. profile build (timed, reported apart, once): ``App.reference.profile()`` fits the reference
   profile, with every column's null distribution, and stores it;
3. driftd first run (timed): a new ``App``, loaded as the CLI loads it (then the objects
   the process holds are frozen out of the garbage collector's sight); the stored
   profile is loaded, then
   ``engine.fold()`` folds every stored row (their feature blocks) into the window state and
   ``engine.finalize()`` gives per-column verdicts (numeric columns of a window larger
   than its row sample are scored exactly, from the window's values that ingestion
   stored, a column at a time, sorted at finalize). The configuration turns
   the multivariate detectors off (``drift.multivariate``: per-column verdicts are what
   Evidently's preset gives); their CPU on the same window is measured after the timed
   part and printed with the ratio it would give;
4. 1,000 more rows of the same window are ingested (not timed); driftd warm run (timed):
   a new process again, fold of the new rows and finalize of the window, as every later
   daemon run does (exact scores read the window's stored values, the new rows' too);
5. Evidently 0.7 (timed): ``Report([DataDriftPreset()], include_tests=True).run(current,
   reference)`` on the same tables loaded from Parquet (then, as for driftd, the objects
   the process holds are frozen), then ``snapshot.dict()``.
6. check (not timed): every column of both driftd runs against the exact computation on
   all values (``column_drift`` with the same method and threshold): the same decision,
   and the score within 1e-9 (basis exact) or within its stated ``error_bound``.

Measures (``bench/common.py``): wall and CPU time of the timed part, peak memory beyond
what the process held before it (VmHWM reset after loading). Ratios: Evidently / driftd
for time (the smaller of wall and CPU ratio), driftd / Evidently for peak extra memory.
Targets (issue 11): 1M first run >= 50x, warm >= 100x, extra memory <= 1/4; at 100k the
first run faster than Evidently (the runs faster than Evidently's, without a memory target).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CATEGORICAL,
    NUMERIC,
    SHIFTED,
    cpu_stall,
    generate,
    loaded,
    measured,
)

ROOT = Path(__file__).resolve().parent.parent
EXTRA_ROWS = 1000
START = datetime(2026, 11, 2, tzinfo=UTC)


def write_setup(directory: Path, thresholds: str) -> None:
    import orjson
    import pyarrow.parquet as pq
    import yaml

    current = pq.read_table(directory / "current.parquet").to_pylist()
    step = 80_000 / max(len(current) + EXTRA_ROWS, 1)
    with open(directory / "log-1.jsonl", "wb") as fh:
        for i, row in enumerate(current):
            fh.write(orjson.dumps(_record(i, row, step)) + b"\n")
    config = {
        "model": {"name": "bench"},
        "reference": {"path": str(directory / "reference.parquet")},
        "schema": {n: "numeric" for n in NUMERIC} | {n: "categorical" for n in CATEGORICAL},
        "sources": {"predictions": [{"paths": [str(directory / "log-*.jsonl")]}]},
        "windows": {"size": "1d"},
        # the per-column verdicts Evidently's preset gives; the multivariate detectors
        # (on by default) are timed apart, after the run (child_driftd)
        "drift": {"reports": "none", "thresholds": thresholds, "multivariate": False},
        "storage": {"url": f"sqlite:///{directory / 'driftd.db'}"},
    }
    (directory / "driftd.yaml").write_text(yaml.safe_dump(config))


def _record(i: int, row: dict[str, Any], step: float) -> dict[str, Any]:
    features = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
    ts = START + timedelta(seconds=i * step)
    return {"id": f"r{i}", "ts": ts.isoformat(), "features": features, "prediction": 0}


def write_extra(directory: Path) -> None:
    import orjson
    import pyarrow.parquet as pq

    rows = pq.read_table(directory / "current.parquet").slice(0, EXTRA_ROWS).to_pylist()
    offset = pq.read_metadata(directory / "current.parquet").num_rows
    step = 80_000 / (offset + EXTRA_ROWS)
    with open(directory / "log-2.jsonl", "wb") as fh:
        for i, row in enumerate(rows, start=offset):
            fh.write(orjson.dumps(_record(i, row, step)) + b"\n")


def _app(directory: Path) -> Any:
    """The daemon's App, as the CLI loads it (``driftd.cli_common.load_app``: after the
    app, the objects the process holds are frozen out of the garbage collector's sight);
    then the modules the statistics job imports on its first run, before any measurement
    (Evidently's child imports Evidently before its measurement too). As in the daemon,
    those are imported after the freeze: a full collection still traverses them."""
    from driftd.app import App
    from driftd.cli_common import freeze_startup
    from driftd.config import load

    app = App(load(directory / "driftd.yaml"))
    freeze_startup()
    import sklearn.decomposition  # noqa: F401  (multivariate drift imports these lazily)
    import sklearn.ensemble  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    import monitor.drift.multivariate  # noqa: F401
    import monitor.statistics  # noqa: F401

    return app


def child_ingest(directory: Path) -> dict[str, Any]:
    """Ingestion as the daemon runs it, with the CPU time of encoding feature blocks (the
    columnar copy of new rows that the fold reads, monitor/blocks.py) counted apart."""
    from monitor import blocks

    encode, spent = blocks.BlockEncoder.__call__, [0.0]

    def timed(self: Any, rows: Any) -> Any:
        cpu = time.process_time()
        try:
            return encode(self, rows)
        finally:
            spent[0] += time.process_time() - cpu

    blocks.BlockEncoder.__call__ = timed  # type: ignore[method-assign]
    with _app(directory) as app:
        cpu = time.process_time()
        report = app.ingest()
        cpu = time.process_time() - cpu
    return {"rows": report.rows, "cpu": cpu, "blocks_cpu": spent[0]}


def child_profile(directory: Path) -> dict[str, Any]:
    with _app(directory) as app:
        rss, reset = loaded()
        stall, wall, cpu = cpu_stall(), time.perf_counter(), time.process_time()
        profile = app.reference.profile(app.statistics_repository)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out = measured(rss, reset, wall, cpu, cpu_stall() - stall)
    out["calibrated"] = len(profile.nulls)
    return out


def child_driftd(directory: Path) -> dict[str, Any]:
    with _app(directory) as app:
        rss, reset = loaded()
        stall, wall, cpu = cpu_stall(), time.perf_counter(), time.process_time()
        engine = app.statistics_engine  # loads the stored profile
        load_wall = time.perf_counter() - wall
        folded = engine.fold()
        results = engine.finalize()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out = measured(rss, reset, wall, cpu, cpu_stall() - stall)
        [start] = results
        out["multivariate"] = multivariate_cpu(app, engine, start)
    [window] = [r.to_dict() for r in results.values()]  # the child prints JSON
    out.update(load=load_wall, folded=folded.rows, window_rows=window["rows"])
    out["columns"] = {c["column"]: c for c in window["drift"]["columns"]}
    return out


def multivariate_cpu(app: Any, engine: Any, start: Any) -> float:
    """CPU seconds of the multivariate detectors on the window just finalized, as the
    daemon runs them by default (``drift.multivariate``; not part of Evidently's preset)."""
    import dataclasses

    import orjson

    from monitor.drift.state import WindowState

    [payload] = app.statistics_repository.states(app.model, [start]).values()
    state = WindowState.from_dict(orjson.loads(payload))
    engine.settings = dataclasses.replace(engine.settings, multivariate=True)
    cpu = time.process_time()
    engine.multivariate(state)
    return time.process_time() - cpu


def child_evidently(directory: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    warnings.simplefilter("ignore")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = pq.read_table(directory / "reference.parquet").to_pandas()
    current = pq.read_table(directory / "current.parquet").to_pandas()
    definition = DataDefinition(
        numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL)
    )
    gc.collect()  # as driftd's child, started objects frozen (a full collection is 0.1 s)
    gc.freeze()
    rss, reset = loaded()
    stall, wall, cpu = cpu_stall(), time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    data = snapshot.dict()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = measured(rss, reset, wall, cpu, cpu_stall() - stall)
    columns: dict[str, dict[str, Any]] = {}
    for metric in data["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {"method": config["method"], "score": metric["value"]}
    for test in data["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    out["columns"] = columns
    return out


def child_check(directory: Path, extra: bool, results: dict[str, Any]) -> dict[str, Any]:
    """The exact computation of every column, on all values, with driftd's choices."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitor.drift.compare import column_drift, reference_column
    from monitor.drift.thresholds import Calibrated

    current = pq.read_table(directory / "current.parquet")
    if extra:
        current = pa.concat_tables([current, current.slice(0, EXTRA_ROWS)])
    with _app(directory) as app:
        profile = app.reference.profile(app.statistics_repository)
        settings = app.statistics_engine.settings
    out = {}
    for name, got in results.items():
        column = profile.columns[name]
        values = current.column(name).to_numpy(zero_copy_only=False)
        kind = "numeric" if column.numeric else "categorical"
        if settings.mode == "calibrated":
            threshold: Any = Calibrated(profile.nulls[name], settings.false_alarm_rate)
        else:
            threshold = None
        exact = column_drift(
            name,
            reference_column(column),
            values,
            kind,
            method=got["method"],
            threshold=threshold,
            least=0,
        )
        out[name] = {"score": exact.score, "drifted": exact.drifted}
    return out


def run_child(tool: str, directory: Path, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", tool, "--dir", str(directory), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{tool} child failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(
    rows: int, runs: dict[str, dict[str, Any]], checks: dict[str, Any], ingest: dict[str, Any]
) -> bool:
    print(
        f"ingestion (not timed above): {ingest['cpu']:.1f} s CPU for {ingest['rows']:,} rows,"
        f" of which {ingest['blocks_cpu']:.1f} s encoding the feature blocks the fold reads"
    )
    print(f"\n{'step':<16} {'wall s':>8} {'CPU s':>8} {'CPU wait':>9} {'peak extra':>11}")
    for name, r in runs.items():
        print(
            f"{name:<16} {r['wall']:>8.2f} {r['cpu']:>8.2f} {r['stall'] / r['wall']:>9.0%}"
            f" {r['extra']:>7.0f} MiB"
        )
    theirs = runs["evidently"]
    ratios = {}
    for run in ("driftd first", "driftd warm"):
        ours = runs[run]
        ratios[run] = min(theirs["wall"] / ours["wall"], theirs["cpu"] / ours["cpu"])
        memory = ours["extra"] / theirs["extra"] if theirs["extra"] > 0 else float("inf")
        with_mv = theirs["cpu"] / (ours["cpu"] + ours["multivariate"])
        print(
            f"{run}: Evidently / driftd time {ratios[run]:.1f}x (the smaller of wall and CPU"
            f" ratios; profile load {ours['load']:.2f} s included), memory driftd / Evidently"
            f" {memory:.3f}; with the multivariate detectors (+{ours['multivariate']:.2f} s"
            f" CPU, not in Evidently's preset) {with_mv:.1f}x CPU"
        )
    first_memory = runs["driftd first"]["extra"] / max(theirs["extra"], 1e-9)
    bad = []
    print(
        f"\n{'column':<14} {'method':<13} {'basis':<7} {'score':>13} {'bound':>9}"
        f" {'threshold':>10} {'exact':>13} d/x/e"
    )
    for run in ("driftd first", "driftd warm"):
        for name, c in runs[run]["columns"].items():
            exact = checks[run][name]
            diff = abs(c["score"] - exact["score"]) if c["score"] is not None else 0.0
            allowed = 1e-9 if c["basis"] == "exact" else (c["error_bound"] or 0.0)
            ok = diff <= allowed and c["drifted"] == exact["drifted"]
            ok = ok and (c["basis"] != "binned" or allowed <= 0.01 * c["threshold"])
            if not ok:
                bad.append(f"{run}:{name}")
            if run == "driftd first":
                e = theirs["columns"][name]
                mark = "*" if name in SHIFTED else " "
                print(
                    f"{name + mark:<14} {c['method']:<13} {c['basis']:<7} {c['score']:>13.8f}"
                    f" {allowed:>9.1e} {c['threshold']:>10.5f} {exact['score']:>13.8f}"
                    f" {_yn(c['drifted'])}/{_yn(exact['drifted'])}/{_yn(e['drifted'])}"
                    + ("" if ok else "  WRONG")
                )
    print("(* shifted; d/x/e: driftd, exact computation, Evidently's decision)")
    targets = [
        ("first run", ratios["driftd first"], 50.0 if rows >= 1_000_000 else 1.0),
        ("warm run", ratios["driftd warm"], 100.0 if rows >= 1_000_000 else 1.0),
    ]
    verdict = [f"{n} {r:.1f}x {'>=' if r >= t else '<'} {t:.0f}x" for n, r, t in targets]
    memory_ok = True
    if rows >= 1_000_000:  # the memory target is the 1M one's (issue 11)
        memory_ok = first_memory <= 0.25
        verdict.append(f"memory {first_memory:.3f} {'<=' if memory_ok else '>'} 0.25")
    verdict.append(f"exact decisions and bounds: {'all' if not bad else bad}")
    passed = all(r >= t for _, r, t in targets) and memory_ok and not bad
    print(f"\nVERDICT at {rows:,} rows: {'PASS' if passed else 'FAIL'}: " + ", ".join(verdict))
    return passed


def _yn(flag: bool) -> str:
    return "Y" if flag else "n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per table")
    ap.add_argument("--quick", action="store_true", help="100,000 rows per table")
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--thresholds", choices=["calibrated", "evidently"], default="calibrated")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--extra", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child == "check":
            results = json.loads((args.dir / "check-input.json").read_text())
            print(json.dumps(child_check(args.dir, args.extra, results)))
            return 0
        if args.child == "setup":  # in a child: its memory is gone when it ends
            generate(args.dir, args.rows, args.seed)
            write_setup(args.dir, args.thresholds)
            print(json.dumps({}))
            return 0
        if args.child == "extra":
            write_extra(args.dir)
            print(json.dumps({}))
            return 0
        children = {
            "ingest": child_ingest,
            "profile": child_profile,
            "driftd": child_driftd,
            "evidently": child_evidently,
        }
        print(json.dumps(children[args.child](args.dir), default=str))
        return 0
    rows = 100_000 if args.quick else args.rows
    directory = Path(tempfile.mkdtemp(prefix="driftd-bench-"))
    try:
        start = time.perf_counter()
        setup = ["--rows", str(rows), "--seed", str(args.seed), "--thresholds", args.thresholds]
        run_child("setup", directory, *setup)
        ingest = run_child("ingest", directory)
        print(
            f"setup: {rows:,} vs {rows:,} rows x 25 columns, {ingest['rows']:,} rows stored "
            f"in {time.perf_counter() - start:.0f} s (not timed)"
        )
        runs = {"profile build": run_child("profile", directory)}
        runs["driftd first"] = run_child("driftd", directory)
        run_child("extra", directory)
        run_child("ingest", directory)
        runs["driftd warm"] = run_child("driftd", directory)
        runs["evidently"] = run_child("evidently", directory)
        checks = {}
        for run, extra in (("driftd first", []), ("driftd warm", ["--extra"])):
            (directory / "check-input.json").write_text(json.dumps(runs[run]["columns"]))
            checks[run] = run_child("check", directory, *extra)
        passed = report(rows, runs, checks, ingest)
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
