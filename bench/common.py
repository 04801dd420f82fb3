"""Shared by the drift benches: the seeded 25-column tables and per-process measures.

Tables: 20 numeric columns (normal, lognormal, exponential, uniform, integer counts, one
integer column with 5 values; four with NaNs) and 5 categorical (Python strings, 5 to 50
values; one with None), six of them shifted in the current table (mean shift, scale
change, new category, changed category mix).
"""

from __future__ import annotations

import gc
import resource
from pathlib import Path
from typing import Any

import numpy as np

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


def status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MiB."""
    with open("/proc/self/status") as fh:
        return {
            line.split(":")[0]: int(line.split()[1]) / 1024
            for line in fh
            if line.startswith(("VmRSS:", "VmHWM:"))
        }


def loaded() -> tuple[float, bool]:
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
    return status()["VmRSS"], reset


def cpu_stall() -> float:
    """Seconds that some runnable task on the machine waited for a CPU (PSI), or NaN."""
    try:
        with open("/proc/pressure/cpu") as fh:
            some = next(line for line in fh if line.startswith("some"))
    except (OSError, StopIteration):
        return float("nan")
    return int(some.rsplit("total=", 1)[1]) / 1e6


def measured(
    rss_loaded: float, reset: bool, wall: float, cpu: float, stall: float
) -> dict[str, Any]:
    now = status()
    return {
        "wall": wall,
        "cpu": cpu,
        "stall": stall,
        "rss_loaded": rss_loaded,
        "peak": now["VmHWM"],
        "extra": now["VmHWM"] - rss_loaded,
        "hwm_reset": reset,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
