"""Ingestion throughput and peak memory, into SQLite and PostgreSQL.

    python bench/ingest.py --rows 1000000 [--rows 5000000] [--backend sqlite|postgresql|both]
                           [--repeat 5]

Generates a JSON Lines prediction log (20 features: 15 numeric, 5 categorical) into a
temporary directory, deterministically from a seed, then ingests it once per backend in
a fresh child process through the public API, so the child's peak RSS is that of
ingestion alone. Prints rows per CPU-second and per wall-second, peak RSS, and a verdict
against the targets: at least 100,000 rows per CPU-second into SQLite (one core), and a
peak RSS under 600 MiB at any file size. The stored row count is checked against the
line count. For PostgreSQL the CPU is the client's only (the server's is not counted).
On a shared machine CPU time varies too: ``--repeat N`` ingests the same file N times per
backend (a fresh database each time) and judges the median run.

Ids are sequential by default (time-ordered, like ULIDs or snowflakes); ``--ids random``
makes them random hex, like UUIDs, which costs SQLite much more as the table grows (the
unique index on (model, id) is then written all over instead of at its end).
``--window-rows N`` ingests into row-count windows of N predictions instead of 1h ones.
``--feature-blocks`` also writes the feature blocks the statistics job folds (the daemon
writes them when a reference is configured, monitor/blocks.py): the targets are for
ingestion alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MODEL = "bench"
TARGET_ROWS_PER_CPU_S = 100_000  # SQLite
TARGET_RSS_MIB = 600
NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = {
    "country": ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "BR"],
    "channel": ["web", "app", "pos", "phone"],
    "device": ["ios", "android", "desktop", "tablet", "other"],
    "segment": [f"seg-{i}" for i in range(40)],
    "merchant_category": [f"mcc-{i:04d}" for i in range(300)],
}
POOL = 1 << 16  # distinct feature objects; lines take them in a scrambled order
START = datetime(2026, 11, 1, tzinfo=UTC)
LINE = (
    b'{"id":"req-%s","ts":"%s.%03dZ","model_version":"%s","variant":"%s",'
    b'"features":%s,"prediction":%d,"score":%s}\n'
)


def _features(rng: random.Random) -> dict[str, object]:
    out: dict[str, object] = {}
    for i, name in enumerate(NUMERIC):
        if rng.random() < 0.01:
            out[name] = None  # a missing value now and then
        elif i % 3 == 0:
            out[name] = rng.randrange(0, 50)  # counts
        elif i % 3 == 1:
            out[name] = rng.gauss(0.0, 1.0)
        else:
            out[name] = round(rng.lognormvariate(3.0, 1.0), 2)  # amounts
    for name, values in CATEGORICAL.items():
        out[name] = rng.choice(values)
    return out


def generate(path: Path, rows: int, seed: int, random_ids: bool) -> None:
    """``rows`` prediction records, 10 per second of event time, byte-identical per seed."""
    rng = random.Random(seed)
    # each bytes from orjson.dumps holds a ~4 KiB allocation: keep tight copies only
    pool = [orjson.dumps(_features(rng)).decode().encode() for _ in range(POOL)]
    scores = [rng.random() for _ in range(4096)]
    texts = [repr(s).encode() for s in scores]
    now = b""
    with open(path, "wb") as fh:
        for block in range(0, rows, 100_000):
            out = []
            for i in range(block, min(block + 100_000, rows)):
                second, tenth = divmod(i, 10)
                if tenth == 0:
                    now = (START + timedelta(seconds=second)).isoformat()[:19].encode()
                rid = b"%016x" % rng.getrandbits(64) if random_ids else b"%010d" % i
                k = (i * 40503) & 4095
                version, variant = b"3" if i % 7 else b"2", b"champion" if i % 10 else b"challenger"
                feats, predicted = pool[(i * 2654435761) % POOL], scores[k] > 0.5
                out.append(
                    LINE % (rid, now, tenth * 100, version, variant, feats, predicted, texts[k])
                )
            fh.write(b"".join(out))


def peak_rss_mib() -> float:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries that high-water mark
    over from the parent through fork and exec; VmHWM belongs to this address space."""
    with open("/proc/self/status") as fh:
        hwm = next(line for line in fh if line.startswith("VmHWM:"))
    return int(hwm.split()[1]) / 1024


def child(
    backend: str,
    url: str,
    path: str,
    chunk_rows: int,
    window_rows: int | None = None,
    feature_blocks: bool = False,
) -> dict[str, object]:
    """Runs in a fresh interpreter: ingest the file, report timings and peak RSS."""
    from sqlalchemy import func, select

    from monitor.ingest import Ingestor, Source
    from monitor.records import FeatureType, RecordSpec
    from monitor.windows import RowWindows, TimeWindows, parse_duration
    from storage import schema
    from storage.ingest import IngestRepository
    from storage.store import Store

    types = {name: FeatureType.NUMERIC for name in NUMERIC}
    types.update({name: FeatureType.CATEGORICAL for name in CATEGORICAL})
    store = Store(url)
    store.migrate()
    ingestor = Ingestor(
        repository=IngestRepository(store),
        model=MODEL,
        sources=[Source("bench", "predictions", (path,), spec=RecordSpec(schema=types))],
        windows=RowWindows(window_rows) if window_rows else TimeWindows(parse_duration("1h")),
        chunk_rows=chunk_rows,
        feature_blocks=feature_blocks,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    report = ingestor.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = peak_rss_mib()
    t = schema.predictions
    with store.connect() as conn:
        stored = conn.execute(select(func.count()).where(t.c.model == MODEL)).scalar_one()
    store.dispose()
    times = os.times()
    return {
        "backend": backend,
        "inserted": report.rows,
        "quarantined": report.quarantined,
        "stored": stored,
        "wall": wall,
        "cpu": cpu,
        "child_cpu": times.user + times.system,
        "rss_mib": peak,
    }


def run_child(backend: str, url: str, path: Path, args: argparse.Namespace) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", backend, "--url", url, "--file", str(path)]
    cmd += ["--chunk-rows", str(args.chunk_rows)]
    if args.window_rows:
        cmd += ["--window-rows", str(args.window_rows)]
    if args.feature_blocks:
        cmd += ["--feature-blocks"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{backend} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pg_schema(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def ingest(
    backend: str, rows: int, path: Path, tmp: Path, args: argparse.Namespace
) -> dict[str, object]:
    """Ingest into a fresh database (SQLite file, PostgreSQL schema), dropped afterwards."""
    if backend == "sqlite":
        db = tmp / f"driftd-{rows}.db"
        result = run_child(backend, f"sqlite:///{db}", path, args)
        for p in tmp.glob(f"driftd-{rows}.db*") if not args.keep else ():
            p.unlink()
        return result
    name = f"bench_{uuid.uuid4().hex[:10]}"
    pg_schema(f'CREATE SCHEMA "{name}"')
    try:
        url = f"{PG_BASE}?options=-csearch_path%3D{name}"
        return run_child(backend, url, path, args)
    finally:
        if args.keep:
            print(f"{'':<10} kept schema {name}")
        else:
            pg_schema(f'DROP SCHEMA "{name}" CASCADE')


def show(lines: int, r: dict[str, object], label: str | None = None, judge: bool = True) -> bool:
    wall, cpu, rss = float(r["wall"]), float(r["cpu"]), float(r["rss_mib"])  # type: ignore[arg-type]
    per_cpu, per_wall = lines / cpu, lines / wall
    ok_count = r["stored"] == r["inserted"] == lines and r["quarantined"] == 0
    ok_rss = rss < TARGET_RSS_MIB
    sqlite = r["backend"] == "sqlite"
    ok_speed = not sqlite or per_cpu >= TARGET_ROWS_PER_CPU_S
    print(
        f"{label or r['backend']:<17} rows {lines:>9,}  wall {wall:6.1f} s  "
        f"cpu {cpu:6.1f} s ({'' if sqlite else 'client; '}child total {r['child_cpu']:.1f} s)  "
        f"{per_cpu:>8,.0f} rows/cpu-s  {per_wall:>8,.0f} rows/wall-s  peak RSS {rss:5.0f} MiB"
    )
    if not judge:
        return True
    verdict = [
        f"stored {r['stored']:,} of {lines:,}" + ("" if ok_count else " MISMATCH"),
        f"peak RSS {'<' if ok_rss else '>='} {TARGET_RSS_MIB} MiB",
    ]
    if sqlite:
        verdict.append(f"{'>=' if ok_speed else '<'} {TARGET_ROWS_PER_CPU_S:,} rows/cpu-s")
    passed = ok_count and ok_rss and ok_speed
    print(f"{'':<17} {'PASS' if passed else 'FAIL'}: " + ", ".join(verdict))
    return passed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", help="lines to generate (repeatable)")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--ids", choices=["sequential", "random"], default="sequential")
    ap.add_argument("--chunk-rows", type=int, default=20_000, help="rows per transaction")
    ap.add_argument("--repeat", type=int, default=1, help="runs per backend; judge the median")
    ap.add_argument("--window-rows", type=int, help="row-count windows (default: 1h windows)")
    ap.add_argument(
        "--feature-blocks",
        action="store_true",
        help="also write feature blocks, as the daemon does when a reference is configured",
    )
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--keep", action="store_true", help="keep the files and the schema")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        out = child(
            args.child, args.url, args.file, args.chunk_rows, args.window_rows, args.feature_blocks
        )
        print(json.dumps(out))
        return 0
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    tmp = Path(tempfile.mkdtemp(prefix="driftd-bench-"))
    passed = True
    try:
        for rows in args.rows or [1_000_000]:
            path = tmp / f"predictions-{rows}.jsonl"
            took = time.perf_counter()
            generate(path, rows, args.seed, args.ids == "random")
            took = time.perf_counter() - took
            size = path.stat().st_size / 2**20
            print(f"generated {rows:,} lines ({args.ids} ids), {size:,.0f} MiB in {took:.1f} s")
            for backend in backends:
                if args.repeat == 1:
                    passed &= show(rows, ingest(backend, rows, path, tmp, args))
                    continue
                runs = []
                for i in range(args.repeat):
                    runs.append(ingest(backend, rows, path, tmp, args))
                    show(rows, runs[-1], f"{backend} {i + 1}/{args.repeat}", judge=False)
                by_cpu = sorted(runs, key=lambda r: float(r["cpu"]))  # type: ignore[arg-type]
                median = by_cpu[len(by_cpu) // 2]  # of an even count, the slower middle run
                passed &= show(rows, median, f"{backend} median")
            if not args.keep:
                path.unlink()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
