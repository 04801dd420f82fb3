"""Throughput and latency of ``driftd serve`` on the demo model, on 127.0.0.1.

    python bench/serve.py [--requests 2000] [--connections 4] [--share 0.5] [--no-fsync]

Trains the demo's baseline model (champion) and a second version (challenger), starts
``driftd serve`` in a child process on a free port, sends ``--requests`` predictions of
demo transactions over ``--connections`` keep-alive connections (after a warm-up of 50),
stops the server with SIGTERM and prints requests per second, p50/p90/p99 latency, and
checks that the log holds exactly one line per answered request. A bounded load: it
stops by itself. Latency is measured by the client, so it includes HTTP and the fsync
of the log line (``--no-fsync`` shows what the fsync costs).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # as driftd serve does; before scikit-learn

from driftd.demo.data import FEATURES, make_reference, train_baseline  # noqa: E402

WARMUP = 50


def feature_rows(n: int) -> list[dict[str, Any]]:
    """``n`` demo transactions as request feature objects (JSON types, null for NaN)."""
    frame = make_reference(n, seed=7)[list(FEATURES)]
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {}
        for name, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif hasattr(value, "item"):  # numpy scalars
                value = value.item()
            row[name] = value
        rows.append(row)
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(root: Path, share: float, fsync: bool) -> tuple[subprocess.Popen[bytes], str]:
    models = {}
    for alias, seed in (("champion", 0), ("challenger", 1)):
        models[alias] = str(root / f"{alias}.joblib")
        joblib.dump(train_baseline(make_reference(20_000, seed=seed), seed=seed), models[alias])
    port = free_port()
    config = {
        "model": {"name": "bench"},
        "sources": {"predictions": [{"paths": ["logs/predictions-*.jsonl"]}]},
        "schema": dict(FEATURES),
        "workspace": ".",
        "experiment": {"challenger_share": share},
        "serve": {
            "port": port,
            "models": models,
            "log": {"path": "logs/predictions.jsonl", "fsync": fsync},
        },
    }
    (root / "serve.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-c", "from driftd.cli import main; main()"]
    server = subprocess.Popen(
        [*command, "serve", "-c", str(root / "serve.yaml"), "--log-level", "WARNING"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            sys.exit(f"driftd serve exited with {server.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            sys.exit("driftd serve did not answer within 120 s")
        time.sleep(0.1)


def run_load(url: str, rows: list[dict[str, Any]], connections: int, prefix: str) -> list[float]:
    """Latencies (seconds) of ``len(rows)`` requests split over ``connections``."""
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def worker(k: int) -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(k, len(rows), connections):
                body = {"id": f"{prefix}-{i}", "features": rows[i]}
                began = time.perf_counter()
                response = client.post("/predict", json=body)
                mine.append(time.perf_counter() - began)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--share", type=float, default=0.5, help="challenger share")
    parser.add_argument("--no-fsync", dest="fsync", action="store_false")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="driftd-bench-serve-") as tmp:
        root = Path(tmp)
        rows = feature_rows(args.requests + WARMUP)
        server, url = start(root, args.share, args.fsync)
        try:
            run_load(url, rows[:WARMUP], args.connections, "warmup")
            began = time.perf_counter()
            latencies = run_load(url, rows[WARMUP:], args.connections, "req")
            elapsed = time.perf_counter() - began
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        lines = sum(
            len(p.read_bytes().splitlines()) for p in (root / "logs").glob("predictions-*.jsonl")
        )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"driftd serve, demo model (HistGradientBoosting pipeline), {args.requests} requests "
        f"over {args.connections} keep-alive connections, challenger share {args.share}, "
        f"fsync {'on' if args.fsync else 'off'}; {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    print(f"  throughput: {args.requests / elapsed:,.0f} requests/s ({elapsed:.1f} s)")
    print(
        "  latency: "
        + ", ".join(
            f"p{int(q * 100)} {quantile(latencies, q) * 1000:.1f} ms" for q in (0.5, 0.9, 0.99)
        )
    )
    expected = args.requests + WARMUP
    verdict = "ok" if lines == expected else "MISMATCH"
    print(f"  log: {lines} lines for {expected} answered requests ({verdict})")
    if lines != expected:
        sys.exit(1)


if __name__ == "__main__":
    main()
