"""A daemon with controllable jobs, run in a subprocess by test_daemon.py.

Usage: python daemon_script.py DB_URL WORKDIR TRIGGER
TRIGGER is "interval" (every second) or "yearly" (never naturally during a test).
The job `gate` writes WORKDIR/started-N, waits until WORKDIR/release exists, then
writes WORKDIR/done-N. The job `boom` raises every time.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from driftd.daemon import Daemon
from driftd.logs import setup_logging
from storage.runs import RunLog
from storage.store import Store

url, workdir, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
runs_started = 0


def gate() -> dict[str, int]:
    global runs_started
    runs_started += 1
    n = runs_started
    (workdir / f"started-{n}").touch()
    while not (workdir / "release").exists():
        time.sleep(0.01)  # waiting for the test's go-ahead, not for time to pass
    (workdir / f"done-{n}").touch()
    return {"run": n}


def boom() -> None:
    raise RuntimeError("boom: this job always fails")


setup_logging("INFO")
logging.getLogger("apscheduler").setLevel(logging.INFO)
store = Store(url)
store.migrate()
if kind == "interval":
    trigger = IntervalTrigger(seconds=1)
else:
    trigger = CronTrigger.from_crontab("0 0 1 1 *")
daemon = Daemon(
    jobs={"gate": gate, "boom": boom},
    triggers={"gate": trigger, "boom": trigger},
    runs=RunLog(store),
    engine=store.engine,
)
daemon.run()
store.dispose()
