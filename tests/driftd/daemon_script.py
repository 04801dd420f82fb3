"""A daemon with controllable jobs, run in a subprocess by test_daemon.py.

Usage: python daemon_script.py DB_URL WORKDIR TRIGGER [lease|standby]
TRIGGER is "interval" (every second), "yearly" (never naturally during a test) or
"queue" (`gate` then `queued`, both due at start, then hourly).
The job `gate` writes WORKDIR/started-N, waits until WORKDIR/release exists, then
writes WORKDIR/done-N. The job `boom` raises every time; `queued` writes
WORKDIR/queued-started. With "lease" the daemon holds the lease of model "m" (exit 1
when another holds it); with "standby" it waits for it, trying every 0.1 s.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from driftd.daemon import Daemon
from driftd.logs import setup_logging
from storage.errors import DriftdError
from storage.lease import Lease
from storage.runs import RunLog
from storage.store import Store

url, workdir, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
leased = sys.argv[4] if len(sys.argv) > 4 else None
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


def queued() -> None:
    (workdir / "queued-started").touch()


setup_logging("INFO")
logging.getLogger("apscheduler").setLevel(logging.INFO)
store = Store(url)
store.migrate()
if kind == "queue":
    triggers = {"gate": IntervalTrigger(hours=1), "queued": IntervalTrigger(hours=1)}
else:
    trigger = (
        IntervalTrigger(seconds=1) if kind == "interval" else CronTrigger.from_crontab("0 0 1 1 *")
    )
    triggers = {"gate": trigger, "boom": trigger}
# without a lease argument the script also runs today's daemon of an older checkout
leases = {"lease": Lease(store, "m")} if leased else {}
daemon = Daemon(
    jobs={"gate": gate, "boom": boom, "queued": queued},
    triggers=triggers,
    runs=RunLog(store),
    engine=store.engine,
    **leases,
)
try:
    if leased:
        daemon.run(standby=leased == "standby", poll=timedelta(seconds=0.1))
    else:
        daemon.run()
except DriftdError as exc:
    logging.getLogger("daemon_script").error("%s", exc)
    sys.exit(1)
finally:
    store.dispose()
