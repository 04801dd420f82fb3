"""driftd's batch drift against Evidently's DataDriftPreset: time, peak memory, scores.

    python bench/drift_vs_evidently.py [--rows 1000000] [--quick] [--seed 20261128] [--keep]

Generates a reference and a current table of ``--rows`` rows each (``--quick``: 100,000),
deterministically from a seed, 25 columns: 20 numeric (normal, lognormal, exponential,
uniform, integer counts, one integer column with 5 values; four with NaNs) and 5
categorical (Python strings, 5 to 50 values; one with None), six of them shifted in the
current table (mean shift, scale change, new category, changed category mix). Both tables
are written to Parquet in a temporary directory, and each tool then runs in its own fresh
interpreter (``subprocess``), which loads the Parquet files and computes drift:

- driftd: ``monitor.drift.compare.compare(reference, current, schema)`` on numpy arrays
  (float64/int64, object arrays of ``str`` for categorical columns), every method picked
  by ``auto_method`` (Evidently's default choice), on all values.
- Evidently 0.7.23, new API: ``Report([DataDriftPreset()], include_tests=True).run(current,
  reference)`` on ``Dataset.from_pandas`` with an explicit ``DataDefinition`` (the 20
  numeric and 5 categorical columns), then ``snapshot.dict()``. Per column, the
  ``ValueDrift`` metric gives the method (its display name) and the score, and its test
  the decision (status FAIL = drift detected, Evidently's ``drift_detected``).

What each number measures:

- wall s / CPU s: ``time.perf_counter`` / ``time.process_time`` (user + sys of all the
  child's threads) around the drift computation only. Both children load the same way
  (``pyarrow.parquet.read_table(...).to_pandas()``; driftd then takes each column's
  ``to_numpy()``, no copy for numbers, the DataFrame's deduplicated ``str`` objects for
  categories); not timed: interpreter start, imports, that load. Timed for Evidently:
  ``Dataset.from_pandas``, the report run and ``snapshot.dict()``.
- CPU wait: the share of the wall time in which some task on the machine waited for a
  CPU (``/proc/pressure/cpu``, "some"). Near 0% the machine was otherwise idle; near 100%
  other load competed and the wall times (and to a lesser degree the CPU times) are
  inflated.
- peak extra MiB: after loading (and a ``gc.collect()``), the child's RSS is read
  (``VmRSS``) and its high-water mark reset (``echo 5 > /proc/self/clear_refs``); peak
  extra = ``VmHWM`` after the computation - that RSS, i.e. the memory the computation
  needed beyond the loaded data. ``ru_maxrss`` is printed too but is not used: it cannot
  be reset, so it also counts loading (and on Linux a parent's high-water mark carried
  across fork+exec).
- speed ratio = Evidently wall / driftd wall, and the same for CPU time; the verdict
  takes the smaller of the two, so contention cannot make it pass. Memory ratio = driftd
  peak extra / Evidently peak extra.
- per column: both methods, both scores, |diff|, both decisions; max |diff| is over the
  columns where both used the same method.
- driftd throughput: rows (reference + current) per CPU-second, and column values (rows x
  25) per CPU-second.
- memory-bandwidth floor (driftd child, after its peak was read): one ``np.sum`` pass over
  the 20 numeric columns of the current table as float64 (rows x 20 x 8 bytes), the least
  CPU time of 5 runs; bytes read per second (``np.copyto`` of the same is shown too). The binned path is driftd's streaming histogram on frozen
  reference bins (``fit_profile``, 1000 quantile bins, fitted once and not timed), per
  column what ``monitor.drift.state.partial`` does for it: drop NaN, ``slot_of``
  (``np.searchsorted``), ``np.bincount``; least CPU time of 5 over the same 20 columns. Its ratio to
  the floor = binned time / floor time (1.0 would be "as fast as reading the data once").
  The full ``partial()`` of the numeric columns (also exact sums, min/max and the row
  sample) is timed the same way (least of 2). The 20 columns take rows x 160 bytes; the machine's L3
  may hold much of that, so the floor is a one-pass floor over this data as it sits,
  not necessarily DRAM bandwidth.

Targets (the issue): driftd at least 50x faster, its peak extra memory at most a quarter
of Evidently's, max |diff| below 1e-9. The last line is the verdict.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 50.0
TARGET_MEMORY_SHARE = 0.25
TARGET_DIFF = 1e-9
REPEAT = 5

# name -> (kind, reference generator, current generator); g is a numpy Generator, n rows
NUMERIC: dict[str, tuple[str, str]] = {
    "normal_0": ("normal 0 1", "normal 0 1"),
    "normal_1": ("normal 0 1", "normal 0.3 1"),  # mean shift
    "normal_2": ("normal 5 2", "normal 5 2.6"),  # scale change
    "normal_3": ("normal 10 3 nan0.02", "normal 10 3 nan0.02"),
    "normal_4": ("normal -1 0.5", "normal -1 0.5"),
    "lognormal_0": ("lognormal 3 1", "lognormal 3 1"),
    "lognormal_1": ("lognormal 3 1", "lognormal 3.4 1"),  # scale x1.5 (mean of log +0.4)
    "lognormal_2": ("lognormal 1 0.5 nan0.01", "lognormal 1 0.5 nan0.01"),
    "lognormal_3": ("lognormal 0 0.25", "lognormal 0 0.25"),
    "lognormal_4": ("lognormal 2 1.5", "lognormal 2 1.5"),
    "count_0": ("poisson 4", "poisson 5"),  # mean shift
    "count_1": ("poisson 4", "poisson 4"),
    "count_2": ("poisson 30", "poisson 30"),
    "count_3": ("poisson 0.7", "poisson 0.7"),
    "count_4": ("integers 0 5", "integers 0 5"),  # 5 values: Jensen-Shannon in both tools
    "uniform_0": ("uniform 0 100", "uniform 0 100"),
    "uniform_1": ("uniform -1 1 nan0.05", "uniform -1 1 nan0.05"),
    "exponential_0": ("exponential 2", "exponential 2"),
    "exponential_1": ("exponential 0.5 nan0.01", "exponential 0.5 nan0.01"),
    "normal_5": ("normal 100 15", "normal 100 15"),
}
# name -> (number of categories, shift in the current table)
CATEGORICAL: dict[str, tuple[int, str]] = {
    "country": (10, "new"),  # 5% of the current rows get a category absent from the reference
    "channel": (5, ""),
    "device": (6, "none"),  # 1% None in both
    "segment": (40, ""),
    "merchant": (50, "mix"),  # category weights reversed
}
SHIFTED = {"normal_1", "normal_2", "lognormal_1", "count_0", "country", "merchant"}


def _numeric(g: np.random.Generator, spec: str, n: int) -> np.ndarray:
    name, *params = spec.split()
    nan_share = 0.0
    if params and params[-1].startswith("nan"):
        nan_share = float(params.pop()[3:])
    args = [float(p) for p in params]
    if name == "integers":
        values: np.ndarray = g.integers(int(args[0]), int(args[1]), n)
    elif name == "poisson":
        values = g.poisson(args[0], n).astype(np.int64)
    else:
        values = getattr(g, name)(*args, n)
    if nan_share:
        values[g.random(n) < nan_share] = np.nan
    return values


def _categorical(g: np.random.Generator, name: str, size: int, shift: str, current: bool, n: int):
    labels = np.array([f"{name}-{i:02d}" for i in range(size)], dtype=object)
    weights = np.linspace(1.0, 3.0, size)
    if current and shift == "mix":
        weights = weights[::-1]
    values = g.choice(labels, n, p=weights / weights.sum())
    if current and shift == "new":
        values[g.random(n) < 0.05] = f"{name}-new"
    if shift == "none":
        values[g.random(n) < 0.01] = None
    return values


def generate(directory: Path, rows: int, seed: int) -> None:
    """``reference.parquet`` and ``current.parquet``, identical for the same seed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    g = np.random.default_rng(seed)
    for which, current in (("reference", False), ("current", True)):
        arrays = {name: _numeric(g, specs[current], rows) for name, specs in NUMERIC.items()}
        for name, (size, shift) in CATEGORICAL.items():
            arrays[name] = _categorical(g, name, size, shift, current, rows)
        table = pa.table({name: pa.array(values) for name, values in arrays.items()})
        pq.write_table(table, directory / f"{which}.parquet")
        del arrays, table


# --- the child processes ------------------------------------------------------------


def _status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MiB."""
    with open("/proc/self/status") as fh:
        return {
            line.split(":")[0]: int(line.split()[1]) / 1024
            for line in fh
            if line.startswith(("VmRSS:", "VmHWM:"))
        }


def _loaded() -> tuple[float, bool]:
    """Settle after loading: the RSS now, and whether the high-water mark was reset."""
    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    return _status()["VmRSS"], reset


def _cpu_stall() -> float:
    """Seconds that some runnable task on the machine waited for a CPU (PSI), or NaN."""
    try:
        with open("/proc/pressure/cpu") as fh:
            some = next(line for line in fh if line.startswith("some"))
    except (OSError, StopIteration):
        return float("nan")
    return int(some.rsplit("total=", 1)[1]) / 1e6


def _measured(
    rss_loaded: float, reset: bool, wall: float, cpu: float, stall: float
) -> dict[str, Any]:
    status = _status()
    return {
        "wall": wall,
        "cpu": cpu,
        "stall": stall,
        "rss_loaded": rss_loaded,
        "peak": status["VmHWM"],
        "extra": status["VmHWM"] - rss_loaded,
        "hwm_reset": reset,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _best(fn: Any, repeat: int = REPEAT) -> float:
    """The least CPU time of ``repeat`` runs (numpy runs these single-threaded, so CPU
    time is their compute time, without the time other processes held the CPU)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def child_driftd(directory: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from monitor.drift.compare import compare

    def load(which: str) -> dict[str, np.ndarray]:
        # the same load as Evidently's, then the DataFrame's arrays (no copy for numbers;
        # the strings are the DataFrame's, deduplicated by pyarrow)
        frame = pq.read_table(directory / f"{which}.parquet").to_pandas()
        return {name: frame[name].to_numpy() for name in frame.columns}

    reference, current = load("reference"), load("current")
    schema = {name: "numeric" for name in NUMERIC} | {name: "categorical" for name in CATEGORICAL}
    rss_loaded, reset = _loaded()
    stall, wall, cpu = _cpu_stall(), time.perf_counter(), time.process_time()
    result = compare(reference, current, schema)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = _measured(rss_loaded, reset, wall, cpu, _cpu_stall() - stall)
    out["columns"] = {
        c.column: {"method": c.method, "score": c.score, "drifted": c.drifted}
        for c in result.columns
    }
    out.update(_binned_vs_floor(reference, current))
    return out


def _binned_vs_floor(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The streaming binned path on the numeric columns against one pass over them."""
    from monitor.drift.profile import fit_profile
    from monitor.drift.state import partial
    from monitor.records import FeatureType

    schema = {name: FeatureType.NUMERIC for name in NUMERIC}
    profile = fit_profile({n: reference[n] for n in NUMERIC}, schema, model_version="bench")
    floats = [np.ascontiguousarray(current[name], dtype=np.float64) for name in NUMERIC]
    columns = [profile.columns[name] for name in NUMERIC]
    nbytes = sum(x.nbytes for x in floats)
    floor = _best(lambda: [np.sum(x) for x in floats])
    copy = _copy_pass(floats)

    def binned() -> None:
        for column, x in zip(columns, floats, strict=True):
            present = x[~np.isnan(x)]
            np.bincount(column.slot_of(present), minlength=column.edges.size + 1)

    batch = dict(zip(NUMERIC, floats, strict=True))
    keys = np.random.default_rng(0).integers(0, 2**63, floats[0].size, dtype=np.uint64)
    return {
        "floor": floor,
        "copy": copy,
        "bytes": nbytes,
        "values": sum(x.size for x in floats),
        "binned": _best(binned),
        "partial": _best(lambda: partial(batch, keys, profile), repeat=2),
    }


def _copy_pass(floats: list[np.ndarray]) -> float:
    sinks = [np.empty_like(x) for x in floats]
    return _best(lambda: [np.copyto(s, x) for s, x in zip(sinks, floats, strict=True)])


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
    rss_loaded, reset = _loaded()
    stall, wall, cpu = _cpu_stall(), time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    data = snapshot.dict()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = _measured(rss_loaded, reset, wall, cpu, _cpu_stall() - stall)
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


# --- the parent ---------------------------------------------------------------------


def run_child(tool: str, directory: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", tool, "--dir", str(directory)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{tool} child failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _method_names() -> dict[str, str]:
    """Evidently's display names -> driftd's method names."""
    from monitor.drift.methods import METHODS

    return {m.display_name: name for name, m in METHODS.items()}


def report(rows: int, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    mib = 2**20
    print(
        f"\n{'tool':<10} {'wall s':>9} {'CPU s':>9} {'CPU wait':>9} {'RSS loaded':>11}"
        f" {'peak':>9} {'peak extra':>11}"
    )
    for name, r in (("driftd", ours), ("evidently", theirs)):
        print(
            f"{name:<10} {r['wall']:>9.2f} {r['cpu']:>9.2f} {r['stall'] / r['wall']:>9.0%}"
            f" {r['rss_loaded']:>7.0f} MiB {r['peak']:>5.0f} MiB {r['extra']:>7.0f} MiB"
            f"   (ru_maxrss {r['ru_maxrss']:.0f} MiB; HWM reset: {r['hwm_reset']})"
        )
    print(
        "CPU wait: share of the wall time in which some task on this machine waited for a"
        " CPU (/proc/pressure/cpu); well above 0% means other load inflated the wall times"
    )
    wall_ratio = theirs["wall"] / ours["wall"]
    cpu_ratio = theirs["cpu"] / ours["cpu"]
    speedup = min(wall_ratio, cpu_ratio)
    memory = ours["extra"] / theirs["extra"] if theirs["extra"] > 0 else float("inf")
    print(
        f"speed ratio: Evidently wall / driftd wall {wall_ratio:.1f}x, "
        f"Evidently CPU / driftd CPU {cpu_ratio:.1f}x (the verdict takes the smaller)"
    )
    print(f"memory ratio (driftd peak extra / Evidently peak extra): {memory:.3f}")

    names = _method_names()
    print(
        f"\n{'column':<14} {'driftd':<13} {'evidently':<13} {'driftd score':>15}"
        f" {'evidently score':>16} {'|diff|':>9}  drift (d/e)"
    )
    max_diff, same, disagree = 0.0, 0, []
    for column, d in ours["columns"].items():
        e = theirs["columns"][column]
        e_method = names.get(e["method"], e["method"])
        diff = abs(d["score"] - e["score"])
        if e_method == d["method"]:
            same += 1
            max_diff = max(max_diff, diff)
        if d["drifted"] != e["drifted"]:
            disagree.append(column)
        mark = "*" if column in SHIFTED else " "
        print(
            f"{column + mark:<14} {d['method']:<13} {e_method:<13} {d['score']:>15.10f}"
            f" {e['score']:>16.10f} {diff:>9.1e}  {_yn(d['drifted'])}/{_yn(e['drifted'])}"
            + ("" if d["drifted"] == e["drifted"] else "  DISAGREE")
        )
    print(f"(* shifted in the current table) same method on {same}/{len(ours['columns'])} columns")
    print(
        f"max |diff| over those: {max_diff:.2e}; drift decisions disagree on: {disagree or 'none'}"
    )

    cpu = ours["cpu"]
    print(
        f"\ndriftd throughput: {2 * rows / cpu:,.0f} rows/CPU-s (reference + current rows, "
        f"25 columns each); {2 * rows * 25 / cpu:,.0f} column values/CPU-s "
        f"({cpu / (2 * rows * 25) * 1e9:.1f} ns per value)"
    )
    n, nbytes = ours["values"], ours["bytes"]
    floor, binned, full = ours["floor"], ours["binned"], ours["partial"]
    print(
        f"one-pass floor: np.sum over the 20 current numeric columns ({nbytes / mib:,.0f} MiB "
        f"float64): {floor * 1e3:.1f} ms = {nbytes / floor / 1e9:.1f} GB/s read "
        f"({floor / n * 1e9:.2f} ns/value); np.copyto of the same: {ours['copy'] * 1e3:.1f} ms "
        f"= {2 * nbytes / ours['copy'] / 1e9:.1f} GB/s read+write"
    )
    print(
        f"binned path (drop NaN, slot_of = searchsorted on 1000 frozen quantile bins, bincount)"
        f": {binned * 1e3:.1f} ms = {n / binned / 1e6:,.0f} M values/s "
        f"({binned / n * 1e9:.2f} ns/value), {binned / floor:.1f}x the floor"
    )
    print(
        f"streaming partial() of the same columns (+ exact sums, min/max, row sample): "
        f"{full * 1e3:.1f} ms ({full / n * 1e9:.2f} ns/value), {full / floor:.1f}x the floor"
    )

    ok_speed = speedup >= TARGET_SPEEDUP
    ok_memory = memory <= TARGET_MEMORY_SHARE
    ok_diff = same > 0 and max_diff < TARGET_DIFF
    verdict = [
        f"speed {speedup:.1f}x (min of wall, CPU) {'>=' if ok_speed else '<'} "
        f"{TARGET_SPEEDUP:.0f}x",
        f"memory {memory:.3f} {'<=' if ok_memory else '>'} {TARGET_MEMORY_SHARE}",
        f"max |diff| {max_diff:.1e} {'<' if ok_diff else '>='} {TARGET_DIFF:.0e}",
    ]
    passed = ok_speed and ok_memory and ok_diff
    scale = "" if rows == 1_000_000 else " (the targets are set for 1,000,000 rows)"
    print(
        f"\nVERDICT at {rows:,} rows{scale}: {'PASS' if passed else 'FAIL'}: " + ", ".join(verdict)
    )
    return passed


def _yn(flag: bool) -> str:
    return "Y" if flag else "n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per table")
    ap.add_argument("--quick", action="store_true", help="100,000 rows per table")
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--child", choices=["driftd", "evidently"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child = child_driftd if args.child == "driftd" else child_evidently
        print(json.dumps(child(args.dir)))
        return 0
    rows = 100_000 if args.quick else args.rows
    directory = Path(tempfile.mkdtemp(prefix="driftd-bench-"))
    try:
        start = time.perf_counter()
        generate(directory, rows, args.seed)
        size = sum(p.stat().st_size for p in directory.glob("*.parquet")) / 2**20
        print(
            f"generated {rows:,} vs {rows:,} rows x {len(NUMERIC) + len(CATEGORICAL)} columns "
            f"({len(NUMERIC)} numeric, {len(CATEGORICAL)} categorical, {len(SHIFTED)} shifted),"
            f" {size:,.0f} MiB Parquet in {time.perf_counter() - start:.1f} s"
        )
        ours = run_child("driftd", directory)
        print(f"driftd done: {ours['wall']:.2f} s wall")
        theirs = run_child("evidently", directory)
        print(f"evidently done: {theirs['wall']:.2f} s wall")
        passed = report(rows, ours, theirs)
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
