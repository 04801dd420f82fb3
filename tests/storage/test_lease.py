"""The lease: one holder per model and store, named to whoever is refused, released
when the holder ends (SIGKILL included), taken over by a standby, noticed when lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.lease import Lease, LeaseHeldError, advisory_key
from storage.store import Store

WAIT = 60.0
HOLD = """
import sys, time
from storage.lease import Lease
from storage.store import Store
lease = Lease(Store(sys.argv[1]), sys.argv[2])
lease.acquire("run")
print("held", flush=True)
sys.stdin.read()  # hold until killed
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database, as two driftd processes would have."""
    a, b = Store(db_url), Store(db_url)
    try:
        yield a, b
    finally:
        a.dispose()
        b.dispose()


def holder_in_subprocess(url: str, model: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, model],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_second_holder_is_refused_with_the_first_named(stores: tuple[Store, Store]) -> None:
    first, second = Lease(stores[0], "fraud"), Lease(stores[1], "fraud")
    assert first.holder() is None
    first.acquire("run")
    assert not second.try_acquire("once")
    with pytest.raises(LeaseHeldError) as refused:
        second.acquire("once")
    message = str(refused.value)
    assert f"held by driftd run (pid {os.getpid()} on {socket.gethostname()}, since" in message
    assert "'fraud'" in message
    holder = second.holder()
    assert holder is not None and holder.purpose == "run" and holder.pid == os.getpid()
    # another model of the same store is independent
    with Lease(stores[1], "churn").hold("once") as other:
        assert other.held
    first.release()
    assert second.holder() is None
    with second.hold("once"):
        assert not first.try_acquire("run")
    assert first.try_acquire("run")
    first.release()


def test_the_lease_dies_with_a_killed_holder_and_a_standby_takes_over(
    stores: tuple[Store, Store],
) -> None:
    proc = holder_in_subprocess(stores[0].url, "fraud")
    standby = Lease(stores[1], "fraud")
    took_over = threading.Event()
    stop = threading.Event()

    def stand_by() -> None:
        if standby.acquire("run", standby=True, poll=timedelta(seconds=0.05), stop=stop):
            took_over.set()

    thread = threading.Thread(target=stand_by, daemon=True)
    try:
        holder = standby.holder()
        assert holder is not None and holder.pid == proc.pid
        thread.start()
        assert not took_over.wait(0.3), "the standby took a lease that was held"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT)
        assert took_over.wait(WAIT), "the standby did not take over after the SIGKILL"
        assert standby.held
        holder = Lease(stores[0], "fraud").holder()
        assert holder is not None and holder.pid == os.getpid()
    finally:
        stop.set()
        proc.kill()
        thread.join(WAIT)
        standby.release()


def test_a_standby_asked_to_stop_gives_up_waiting(stores: tuple[Store, Store]) -> None:
    with Lease(stores[0], "fraud").hold("run"):
        stop = threading.Event()
        stop.set()
        standby = Lease(stores[1], "fraud")
        assert not standby.acquire("run", standby=True, poll=timedelta(seconds=0.05), stop=stop)
        assert not standby.held


def test_an_in_memory_database_needs_no_lease() -> None:
    store = Store("sqlite:///:memory:")
    with Lease(store, "fraud").hold("once") as lease:
        assert lease.ensure()
    store.dispose()


def test_sqlite_lease_file_lies_beside_the_database(sqlite_url: str, tmp_path: Path) -> None:
    store = Store(sqlite_url)
    with Lease(store, "team/fraud v2").hold("run"):
        assert (tmp_path / "driftd.db.team_fraud_v2.lease").exists()
    store.dispose()


def terminate_lease_connections(url: str) -> int:
    """What a restarted server or a dropped network does to the holder's connection."""
    store = Store(url)
    try:
        with store.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": f"driftd run pid {os.getpid()} on {socket.gethostname()}"[:63]},
            ).scalar_one()
            conn.commit()
            return int(killed)
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_lost_postgresql_lease_is_noticed_and_retaken_only_when_free(pg_url: str) -> None:
    store, other_store = Store(pg_url), Store(pg_url)
    lease, other = Lease(store, "fraud"), Lease(other_store, "fraud")
    try:
        lease.acquire("run")
        assert lease.ensure()
        assert terminate_lease_connections(pg_url) == 1
        assert lease.ensure(), "the lease was free again and not taken back"
        assert not other.try_acquire("run")
        assert terminate_lease_connections(pg_url) == 1
        wait_for(lambda: other.try_acquire("once"), "the server to release the lost lease")
        assert not lease.ensure()
        holder = lease.holder()
        assert holder is not None and holder.purpose == "once"
    finally:
        lease.release()
        other.release()
        store.dispose()
        other_store.dispose()


@pytest.mark.postgres
def test_postgresql_leases_of_two_schemas_are_independent(pg_url: str) -> None:
    # each test schema is its own driftd store on the shared test database
    store = Store(pg_url)
    elsewhere = Store(pg_url.rsplit("%3D", 1)[0] + "%3Dpublic")
    try:
        with Lease(store, "fraud").hold("run"), Lease(elsewhere, "fraud").hold("run"):
            pass
    finally:
        store.dispose()
        elsewhere.dispose()
    assert advisory_key("a", "fraud") != advisory_key("b", "fraud")
    # keys of both signs name their holder (pg_locks splits them into two oids)
    negative = next(m for m in ("m0", "m1", "m2", "m3", "m4", "m5") if advisory_key("x", m) < 0)
    positive = next(m for m in ("m0", "m1", "m2", "m3", "m4", "m5") if advisory_key("x", m) > 0)
    for model in (negative, positive):
        store, other = Store(pg_url), Store(pg_url)
        try:
            with Lease(store, model).hold("ingest"):
                holder = Lease(other, model).holder()
                assert holder is not None and (holder.purpose, holder.pid) == (
                    "ingest",
                    os.getpid(),
                )
        finally:
            store.dispose()
            other.dispose()
