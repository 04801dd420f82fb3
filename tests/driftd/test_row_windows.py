"""Row-count windows end to end: ``windows: {rows: 500}`` from the config file to drift
statistics per 500-row window, through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from driftd.app import App
from driftd.cli import app
from driftd.config import load, parse
from driftd.errors import ConfigError
from monitor.windows import RowWindows, TimeWindows
from storage import schema
from storage.store import Store

runner = CliRunner()
START = datetime(2026, 11, 2, tzinfo=UTC)
MINIMAL = {"model": {"name": "m"}, "sources": {"predictions": [{"paths": ["*.jsonl"]}]}}


def draw(rng: np.random.Generator, n: int, *, shift: bool = False) -> pd.DataFrame:
    countries = ["DE", "FR", "NL", "US"] + (["BR"] if shift else [])
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0 + (0.8 if shift else 0.0), 0.6, n),
            "visits": rng.poisson(4, n).astype(float),
            "country": rng.choice(countries, n),
        }
    )


def record(rid: str, ts: datetime, row: pd.Series) -> str:
    features = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    ts_text = ts.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"id": rid, "ts": ts_text, "features": features, "prediction": 0, "score": 0.1}
    )


@pytest.fixture
def workspace(tmp_path: Path, db_url: str) -> Path:
    """2,300 predictions, the last 800 shifted, with 20 re-sent records, one late record
    and one malformed line among them."""
    rng = np.random.default_rng(5)
    draw(rng, 5000).assign(label=0).to_csv(tmp_path / "reference.csv", index=False)
    frame = pd.concat([draw(rng, 1500), draw(rng, 800, shift=True)], ignore_index=True)
    lines = [record(f"r{i}", START + timedelta(seconds=8 * i), row) for i, row in frame.iterrows()]
    lines[2100:2100] = ["{not json", record("late", START, frame.iloc[2100])]
    lines[1200:1200] = lines[100:120]  # a client's retry: duplicates, not counted
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "p.jsonl").write_text("\n".join(lines) + "\n")
    config = {
        "model": {"name": "m"},
        "reference": {"path": "reference.csv", "target": "label"},
        "sources": {"predictions": [{"paths": ["logs/*.jsonl"]}]},
        "windows": {"rows": 500},
        "ingest": {"chunk_rows": 333},
        "drift": {"reports": "episode", "report_rows": 500},
        "storage": {"url": db_url},
        "workspace": "ws",
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def cli(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rows_config_ingests_and_computes_drift_per_500_row_window(workspace: Path) -> None:
    cfg = str(workspace / "driftd.yaml")
    summary = cli("ingest", "-c", cfg)
    assert (summary["rows"], summary["duplicates"], summary["quarantined"]) == (2301, 20, 1)
    assert sorted(summary["windows"].values()) == [301, 500, 500, 500, 500]

    assert cli("once", "-c", cfg)["statistics"]["outcome"] == "ok"
    with App(load(cfg)) as application:
        windows = application.window_results()
        store = Store(application.config.storage_url)
        p = schema.predictions
        with store.connect() as conn:
            late = conn.execute(select(p.c.window_start).where(p.c.id == "late")).scalar_one()
            neighbour = conn.execute(select(p.c.window_start).where(p.c.id == "r2100"))
            assert late == neighbour.scalar_one()  # arrival order, not event time
        store.dispose()

    assert [w.rows for w in windows] == [500, 500, 500, 500, 301]
    starts = [w.start for w in windows]
    assert starts[0] == START and starts == sorted(starts)
    # windows 0-2 are stationary; 3 and 4 hold the shifted rows
    drifted = [w.drift.drifted for w in windows]
    assert drifted == [False, False, False, True, True]
    columns = {c.column for c in windows[3].drift.columns if c.drifted}
    assert {"amount", "country"} <= columns
    # one detail report for the drift episode: its first window, not the one after it
    reports = sorted((workspace / "ws" / "reports").glob("*.html"))
    assert [r.name for r in reports] == [f"drift-m-{starts[3]:%Y%m%dT%H%M}.html"]
    assert windows[3].report and not windows[4].report

    status = cli("status", "-c", cfg)
    assert [w["predictions"] for w in status["windows"]] == [500, 500, 500, 500, 301]
    drift = cli("drift", "-c", cfg, "--window", starts[3].isoformat())
    assert drift["drift"]["drifted"]


def test_windows_config_takes_size_or_rows() -> None:
    def windows(section: dict[str, Any] | None) -> Any:
        data = MINIMAL if section is None else {**MINIMAL, "windows": section}
        return parse(data, base=Path(".")).windows.build()

    assert isinstance(windows(None), TimeWindows) and windows(None).size == timedelta(hours=1)
    assert windows({"size": "15m"}).size == timedelta(minutes=15)
    assert isinstance(windows({"rows": 500}), RowWindows) and windows({"rows": 500}).rows == 500


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"size": "1h", "rows": 500}, "windows: give 'size' (time windows, e.g. 1h) or 'rows'"),
        ({"size": None}, "windows: give 'size'"),
        ({"rows": 0}, "windows.rows: Input should be greater than or equal to 1 (got 0)"),
        ({"rows": "many"}, "windows.rows: Input should be a valid integer (got 'many')"),
        ({"rows": True}, "windows.rows: Input should be a valid integer (got True)"),
        ({"rows": 2.5}, "windows.rows: Input should be a valid integer"),
        ({"count": 5}, "windows.count: Extra inputs are not permitted"),
    ],
)
def test_bad_windows_config_is_refused_naming_the_key(
    section: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse({**MINIMAL, "windows": section}, base=Path("."))
    assert expected in str(info.value)
    if "both" in expected or section == {"size": "1h", "rows": 500}:
        assert "not both" in str(info.value)
