"""One training per model at a time, across processes; the cooldown holds across them."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retrain.lock import single_flight
from retrain.triggers import Policy, decide
from storage.models import ModelRepository
from storage.store import Store

HOLDER = Path(__file__).with_name("lock_holder.py")


def wait_for(path: Path, proc: subprocess.Popen[bytes], deadline: float = 60) -> str:
    end = time.monotonic() + deadline
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.01)
    return path.read_text()


@contextmanager
def holder(url: str, workspace: Path, model: str, name: str) -> Iterator[tuple[str, Path]]:
    """Another process holding (or failing to hold) the lock until the block ends."""
    state, release = workspace / f"{name}.state", workspace / f"{name}.release"
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), url, str(workspace), model, str(state), str(release)]
    )
    try:
        yield wait_for(state, proc), release
    finally:
        release.touch()
        assert proc.wait(timeout=60) == 0


def unique(name: str) -> str:
    # advisory locks are database-wide: other test runs may use the same server
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_one_training_per_model_across_processes(store: Store, tmp_path: Path) -> None:
    fraud, churn = unique("fraud"), unique("churn")
    with holder(store.url, tmp_path, fraud, "first") as (state, _):
        assert state == "held"
        with single_flight(store, fraud, workspace=tmp_path) as held:
            assert not held
        with holder(store.url, tmp_path, fraud, "second") as (second, _):
            assert second == "busy"
        # another model trains meanwhile
        with single_flight(store, churn, workspace=tmp_path) as held:
            assert held

    with single_flight(store, fraud, workspace=tmp_path) as held:
        assert held
        with holder(store.url, tmp_path, fraud, "third") as (third, _):
            assert third == "busy"


def test_a_lock_dies_with_its_process(store: Store, tmp_path: Path) -> None:
    state, release, model = tmp_path / "s", tmp_path / "never", unique("fraud")
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), store.url, str(tmp_path), model, str(state), str(release)]
    )
    assert wait_for(state, proc) == "held"
    proc.kill()
    proc.wait(timeout=60)

    with single_flight(store, model, workspace=tmp_path) as held:
        assert held


def test_the_cooldown_holds_across_processes(store: Store) -> None:
    started = datetime.now(UTC) - timedelta(hours=1)
    script = (
        "import sys; from datetime import datetime\n"
        "from storage.models import ModelRepository; from storage.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "ModelRepository(s).start_training('fraud', trigger='drift', reason='held 3 windows',"
        " now=datetime.fromisoformat(sys.argv[2]), data_end=None)\n"
        "s.dispose()\n"
    )
    subprocess.run([sys.executable, "-c", script, store.url, started.isoformat()], check=True)

    signals = ModelRepository(store).signals("fraud", windows=10, matured_before=started)
    policy = Policy(mode="auto", schedule="* * * * *", cooldown=timedelta(days=1), min_new_labels=0)
    decision = decide(policy, signals, now=started + timedelta(hours=2))

    assert decision.action == "blocked"
    assert decision.blocked is not None and decision.blocked.startswith("cooldown until")
    assert decide(policy, signals, now=started + timedelta(days=1, minutes=1)).train
