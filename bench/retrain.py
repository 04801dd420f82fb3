"""Training time and peak memory of the demo's Keras and scikit-learn trainers on CPU.

    python bench/retrain.py [--rows 20000] [--seed 0] [--trainers keras,sklearn]

Draws the demo's card-fraud reference (``driftd.demo.data.make_reference``, about 5%
fraud), splits it 60/20/20 into train / validation / test, and trains each trainer with
its default settings (Keras: the default 3-point grid, early stopping, class weights;
scikit-learn: histogram gradient boosting, iterations chosen on validation, one OpenMP
thread) in its own fresh interpreter, so one's imports and memory do not count for the
other. Each child prints one JSON line; the parent prints the table.

What each number measures:

- wall s / CPU s: ``time.perf_counter`` / ``time.process_time`` (all the child's
  threads) around ``trainer.fit`` only; not timed: interpreter start, imports, drawing
  the data.
- CPU wait: the share of the wall time in which some task on the machine waited for a
  CPU (``/proc/pressure/cpu``, "some"); well above 0% means other load inflated the wall
  time.
- peak extra MiB: the child's high-water mark (``VmHWM``, reset after loading through
  ``/proc/self/clear_refs``) minus its RSS before training: the memory training needed
  beyond the imported libraries and the data. peak MiB is the high-water mark itself.
- test ROC AUC: of the trained candidate on the 20% test rows (never seen in training).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_stall  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _status() -> dict[str, float]:
    with open("/proc/self/status") as fh:
        return {
            line.split(":")[0]: int(line.split()[1]) / 1024
            for line in fh
            if line.startswith(("VmRSS:", "VmHWM:"))
        }


def child(trainer_name: str, rows: int, seed: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from sklearn.metrics import roc_auc_score

    from driftd.demo.data import FEATURES, TARGET, make_reference
    from retrain.trainers import trainer_for
    from retrain.trainers.base import TrainerSpec

    if trainer_name == "keras":
        import retrain.trainers.keras  # noqa: F401  (import TensorFlow before measuring)
    data = make_reference(rows, seed=seed)
    a, b = int(rows * 0.6), int(rows * 0.8)
    train, validation, test = data.iloc[:a], data.iloc[a:b], data.iloc[b:]
    spec = TrainerSpec(features=FEATURES, target=TARGET, framework=trainer_name, seed=seed)  # type: ignore[arg-type]
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    rss = _status()["VmRSS"]
    stall, wall, cpu = cpu_stall(), time.perf_counter(), time.process_time()
    candidate = trainer_for(spec).fit(train, validation, spec)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stall = cpu_stall() - stall
    status = _status()
    return {
        "trainer": trainer_name,
        "rows": rows,
        "wall": wall,
        "cpu": cpu,
        "cpu_wait": stall / wall if wall else float("nan"),
        "peak": status["VmHWM"],
        "extra": status["VmHWM"] - rss,
        "hwm_reset": reset,
        "auc": float(roc_auc_score(test[TARGET], candidate.predict_scores(test))),
        "params": dict(candidate.params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trainers", default="keras,sklearn")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.seed)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    results = []
    for name in args.trainers.split(","):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                name,
                "--rows",
                str(args.rows),
                "--seed",
                str(args.seed),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if out.returncode != 0:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"demo reference: {args.rows} rows (60/20/20 train/validation/test), seed {args.seed}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'trainer':<8} {'wall s':>7} {'CPU s':>7} {'CPU wait':>9} {'peak MiB':>9} "
        f"{'peak extra MiB':>15} {'test ROC AUC':>13}"
    )
    for r in results:
        print(
            f"{r['trainer']:<8} {r['wall']:>7.1f} {r['cpu']:>7.1f} {r['cpu_wait']:>9.0%} "
            f"{r['peak']:>9.0f} {r['extra']:>15.0f} {r['auc']:>13.4f}"
        )
    for r in results:
        print(
            f"{r['trainer']}: {r['params']}"
            + ("" if r["hwm_reset"] else " (high-water mark not reset: peak includes loading)")
        )


if __name__ == "__main__":
    main()
