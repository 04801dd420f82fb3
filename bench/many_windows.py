"""Per-window overhead: the same rows in 1,440 one-minute windows against one window.

    python bench/many_windows.py [--rows 200000] [--windows 1440] [--seed 7] [--keep]
                                 [--database postgresql://postgres@127.0.0.1:5432/test]

Generates ``--rows`` predictions (8 numeric and 3 categorical features, a score and a
prediction) with their labels, spread evenly over ``--windows`` minutes, and a 20,000-row
reference table. For each layout, in a fresh process per step, driftd runs as users run
it, through ``App``: ingest (not timed), then the statistics job and the performance job
(timed, each), with the windows either one minute long (``--windows`` of them) or one
day long (all the rows in one window). Prints both times per job, the totals and their
ratio (target: many windows at most 3x one window, in CPU time of the job's process;
wall time is printed too: on PostgreSQL the server's work shows only there).

The store is SQLite (a file per layout) unless ``--database`` names a PostgreSQL
database: each layout then gets a fresh schema there (dropped afterwards unless
``--keep``), so the bench neither needs an empty database nor touches other tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 2, tzinfo=UTC)
TARGET = 3.0
NUMERIC = [f"x{i}" for i in range(8)]
CATEGORICAL = {"country": 8, "channel": 3, "device": 5}


def generate(directory: Path, rows: int, windows: int, seed: int) -> None:
    import orjson
    import pandas as pd

    g = np.random.default_rng(seed)

    def table(n: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {n_: g.normal(i, 1 + i / 4, n) for i, n_ in enumerate(NUMERIC)}
        for name, k in CATEGORICAL.items():
            out[name] = g.choice([f"{name}{j}" for j in range(k)], n)
        return out

    reference = table(20_000)
    logit = reference["x0"] - reference["x1"] / 2
    reference["label"] = (g.random(20_000) < 1 / (1 + np.exp(-logit))).astype(int)
    pd.DataFrame(reference).to_parquet(directory / "reference.parquet")
    current = table(rows)
    score = 1 / (1 + np.exp(-(current["x0"] - current["x1"] / 2)))
    label = (g.random(rows) < score).astype(int)
    step = windows * 60 / rows
    with (
        open(directory / "predictions.jsonl", "wb") as p,
        open(directory / "labels.jsonl", "wb") as lb,
    ):
        for i in range(rows):
            ts = (START + timedelta(seconds=i * step)).isoformat()
            features = {name: current[name][i].item() for name in current}
            record = {
                "id": f"r{i}",
                "ts": ts,
                "features": features,
                "prediction": int(score[i] > 0.5),
                "score": float(score[i]),
            }
            p.write(orjson.dumps(record) + b"\n")
            lb.write(orjson.dumps({"id": f"r{i}", "label": int(label[i]), "ts": ts}) + b"\n")


def write_config(directory: Path, layout: str, size: str, url: str) -> Path:
    import yaml

    config = {
        "model": {"name": "many"},
        "reference": {"path": str(directory / "reference.parquet"), "target": "label"},
        "sources": {
            "predictions": [{"paths": [str(directory / "predictions.jsonl")]}],
            "labels": [{"paths": [str(directory / "labels.jsonl")]}],
        },
        "windows": {"size": size},
        "performance": {"label_delay": "1m"},
        "drift": {"reports": "none"},
        "storage": {"url": url},
    }
    path = directory / f"{layout}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def store_url(database: str | None, directory: Path, layout: str) -> str:
    """The layout's store: a SQLite file, or a fresh schema of the PostgreSQL
    ``database`` (its search_path set in the URL, as the tests' fixtures do)."""
    if database is None:
        return f"sqlite:///{directory / f'{layout}.db'}"
    from sqlalchemy import create_engine, text

    schema = f"bench_windows_{layout}_{directory.name.rsplit('-', 1)[-1].lower()}"
    admin = create_engine(database)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in database else "?"
    return f"{database}{separator}options=-csearch_path%3D{schema}"


def drop_schemas(database: str, urls: list[str]) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(database)
    with admin.begin() as conn:
        for url in urls:
            schema = url.rsplit("%3D", 1)[-1]
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def child(config: Path, step: str) -> dict[str, Any]:
    from driftd.app import App
    from driftd.config import load
    from driftd.jobs.performance import Performance
    from driftd.jobs.statistics import Statistics

    with App(load(config)) as app:
        wall, cpu = time.perf_counter(), time.process_time()
        if step == "ingest":
            app.ingest()
            summary: dict[str, Any] = {}
        elif step == "statistics":
            out = Statistics().run(app).summary
            summary = {"finalized": out["finalized"], "rows": out["rows"]}
        else:
            out = Performance().run(app).summary
            summary = {k: v for k, v in out.items() if isinstance(v, int | float | str)}
        return {
            "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            **summary,
        }


def run(config: Path, step: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", step, "--config", str(config)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{step} failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--windows", type=int, default=1440)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument(
        "--database",
        help="a PostgreSQL URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); "
        "default: a SQLite file per layout",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.config, args.child), default=str))
        return 0
    if args.database and args.database.startswith("postgresql://"):
        args.database = "postgresql+psycopg://" + args.database.removeprefix("postgresql://")
    directory = Path(tempfile.mkdtemp(prefix="driftd-windows-"))
    urls: list[str] = []
    try:
        generate(directory, args.rows, args.windows, args.seed)
        times: dict[str, dict[str, dict[str, Any]]] = {}
        for layout, size in (("many", "1m"), ("one", "1d")):
            urls.append(store_url(args.database, directory, layout))
            config = write_config(directory, layout, size, urls[-1])
            run(config, "ingest")
            times[layout] = {job: run(config, job) for job in ("statistics", "performance")}
        where = "SQLite" if args.database is None else "PostgreSQL"
        print(f"{args.rows:,} rows on {where}: {args.windows:,} one-minute windows vs one window")
        print(
            f"{'job':<12} {'many wall':>10} {'many CPU':>9} {'one wall':>9} {'one CPU':>8}"
            f" {'CPU ratio':>10} {'wall ratio':>11}"
        )
        for job in ("statistics", "performance"):
            m, o = times["many"][job], times["one"][job]
            print(
                f"{job:<12} {m['wall']:>10.2f} {m['cpu']:>9.2f} {o['wall']:>9.2f} {o['cpu']:>8.2f}"
                f" {m['cpu'] / o['cpu']:>9.2f}x {m['wall'] / o['wall']:>10.2f}x"
            )
        many = sum(t["cpu"] for t in times["many"].values())
        one = sum(t["cpu"] for t in times["one"].values())
        ratio = many / one
        walls = [sum(t["wall"] for t in times[layout].values()) for layout in ("many", "one")]
        print(
            f"{'in all':<12} {walls[0]:>10.2f} {many:>9.2f} {walls[1]:>9.2f} {one:>8.2f}"
            f" {ratio:>9.2f}x {walls[0] / walls[1]:>10.2f}x"
        )
        print(
            f"statistics windows finalized: {times['many']['statistics']['finalized']} vs "
            f"{times['one']['statistics']['finalized']}"
        )
        print(
            f"\nVERDICT: many / one CPU time {ratio:.2f}x {'<=' if ratio <= TARGET else '>'} "
            f"{TARGET:.0f}x: {'PASS' if ratio <= TARGET else 'FAIL'}"
        )
        return 0 if ratio <= TARGET else 1
    finally:
        if args.keep:
            print(f"kept {directory}" + "".join(f"\n  {u}" for u in urls if args.database))
        else:
            shutil.rmtree(directory, ignore_errors=True)
            if args.database and urls:
                drop_schemas(args.database, urls)


if __name__ == "__main__":
    sys.exit(main())
