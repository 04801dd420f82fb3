"""Files driftd writes can hold personal data (logged features, labels, excerpts): the
database, drift reports, review exports and training sets are created readable by their
owner only, 0600 in 0700 directories, even under a permissive umask."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from driftd.cli import app
from storage.errors import StorageError
from storage.store import Store

runner = CliRunner()
START = datetime(2026, 11, 28, 10, tzinfo=UTC)
COUNTRIES = ["DE", "FR", "US"]  # US: unseen in the reference


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> None:
    """What a login shell or a unit without UMask= gives: files 0644, directories 0755."""
    os.umask(0o022)  # the conftest puts the test's own umask back afterwards


@pytest.fixture
def workspace(tmp_path: Path, permissive_umask: None) -> Path:
    """A SQLite workspace with a drifted window, labels (two of them wrong predictions)
    and one detail report per drifted window."""
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {
            "amount": rng.normal(50, 10, 2000),
            "country": rng.choice(["DE", "FR"], 2000),
            "label": rng.integers(0, 2, 2000),
        }
    )
    reference.to_csv(tmp_path / "reference.csv", index=False)
    predictions, labels = [], []
    for i in range(300):
        score = float(rng.uniform())
        predictions.append(
            {
                "id": f"p{i}",
                "ts": (START + timedelta(seconds=10 * i)).isoformat(),
                "features": {
                    "amount": float(rng.normal(90, 10)),
                    "country": str(rng.choice(COUNTRIES)),
                },
                "prediction": int(score >= 0.5),
                "score": score,
            }
        )
        if i < 20:
            labels.append({"id": f"p{i}", "label": 1 - int(score >= 0.5), "ts": "2026-11-29"})
    (tmp_path / "logs").mkdir()
    for name, records in (("predictions", predictions), ("labels", labels)):
        text = "".join(json.dumps(r) + "\n" for r in records)
        (tmp_path / "logs" / f"{name}.jsonl").write_text(text)
    config = {
        "model": {"name": "m"},
        "reference": {"path": "reference.csv", "target": "label"},
        "sources": {
            "predictions": [{"paths": ["logs/predictions.jsonl"]}],
            "labels": [{"paths": ["logs/labels.jsonl"]}],
        },
        "schema": {"amount": "numeric", "country": "categorical"},
        "drift": {"reports": "all", "report_rows": 500, "threshold": 0.1},
        "workspace": "ws",  # the database goes to ws/driftd.db
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_database_reports_exports_and_training_sets_are_private(workspace: Path) -> None:
    cfg = str(workspace / "driftd.yaml")
    once = runner.invoke(app, ["once", "-c", cfg, "--json"])
    assert once.exit_code == 0, once.output
    ws = workspace / "ws"
    assert mode(ws) == 0o700
    assert mode(ws / "driftd.db") == 0o600
    [report] = (ws / "reports").glob("drift-m-*.html")
    assert (mode(ws / "reports"), mode(report)) == (0o700, 0o600)

    export = workspace / "out" / "queue.csv"
    export.parent.mkdir()
    args = ["review", "export", "--format", "csv", "-o", str(export), "-c", cfg]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "wrote 50 review items" in result.stdout, result.output
    assert mode(export) == 0o600
    tasks = workspace / "out" / "tasks.json"
    args = ["review", "export", "--format", "label-studio", "-o", str(tasks), "-c", cfg]
    assert runner.invoke(app, args).exit_code == 0
    assert mode(tasks) == 0o600
    train = workspace / "out" / "train.csv"
    result = runner.invoke(app, ["training-set", "-o", str(train), "-c", cfg])
    assert result.exit_code == 0 and "wrote 20 rows" in result.stdout, result.output
    assert mode(train) == 0o600


def test_a_stricter_umask_is_kept(tmp_path: Path) -> None:
    os.umask(0o277)
    config = {"model": {"name": "m"}, "sources": {"predictions": [{"paths": ["*.jsonl"]}]}}
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    assert runner.invoke(app, ["ingest", "-c", str(tmp_path / "driftd.yaml")]).exit_code == 0
    assert os.umask(0o022) == 0o277


def test_a_new_sqlite_database_and_its_wal_are_private(
    tmp_path: Path, permissive_umask: None
) -> None:
    """Also when driftd's storage is used without the CLI (a library caller, a test)."""
    db = tmp_path / "state" / "driftd.db"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    with store.connect() as conn:  # an open connection keeps the -wal and -shm files
        conn.exec_driver_sql("SELECT count(*) FROM predictions").scalar()
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()
        assert (mode(db.parent), mode(db), mode(wal), mode(shm)) == (0o700, 0o600, 0o600, 0o600)
    store.dispose()


def test_a_database_path_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "ws").write_text("a file where the workspace directory should be")
    store = Store(f"sqlite:///{tmp_path / 'ws' / 'driftd.db'}")
    with pytest.raises(StorageError, match=r"cannot open database .*ws"):
        store.ping()


def test_init_writes_a_config_the_service_user_can_read(
    tmp_path: Path, permissive_umask: None
) -> None:
    """`driftd init /etc/driftd` runs as root; the unit runs as user driftd."""
    assert runner.invoke(app, ["init", str(tmp_path / "etc")]).exit_code == 0
    assert (mode(tmp_path / "etc"), mode(tmp_path / "etc" / "driftd.yaml")) == (0o755, 0o644)
