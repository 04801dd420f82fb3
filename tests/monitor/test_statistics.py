"""The statistics job end to end: fold once, finalize changed windows, calibrated alarms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from driftd.app import App
from driftd.config import load
from driftd.jobs.statistics import Statistics
from monitor.drift.profile import fit_profile, profile_from_stored
from monitor.drift.state import partial, row_keys
from monitor.records import FeatureType
from monitor.statistics import DriftSettings, StatisticsEngine

SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "age": FeatureType.NUMERIC,
    "visits": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
    "channel": FeatureType.CATEGORICAL,
    "is_new": FeatureType.BOOLEAN,
}


def draw(rng: np.random.Generator, n: int, *, shift: bool = False) -> pd.DataFrame:
    countries = ["DE", "FR", "NL", "US"] + (["BR"] if shift else [])
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0 + (0.8 if shift else 0.0), 0.6, n),
            "age": rng.normal(40, 12, n),
            "visits": rng.poisson(4, n).astype(float),
            "country": rng.choice(countries, n),
            "channel": rng.choice(["web", "app", "store"], n, p=[0.5, 0.3, 0.2]),
            "is_new": rng.random(n) < 0.2,
        }
    )


def record(i: int, ts: datetime, row: pd.Series) -> str:
    features = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    return json.dumps(
        {
            "id": f"r{i}",
            "ts": ts.isoformat().replace("+00:00", "Z"),
            "features": features,
            "prediction": 0,
            "score": 0.1,
        }
    )


@pytest.fixture
def workspace(tmp_path: Path, db_url: str) -> Path:
    rng = np.random.default_rng(11)
    draw(rng, 5000).assign(label=0).to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "logs").mkdir()
    start = datetime(2026, 11, 2, tzinfo=UTC)
    lines = []
    for hour in range(6):  # hours 0-2 stationary, 3-5 shifted
        frame = draw(rng, 400, shift=hour >= 3)
        for j, (_, row) in enumerate(frame.iterrows()):
            ts = start + timedelta(hours=hour, seconds=j * 8)
            lines.append(record(hour * 1000 + j, ts, row))
    (tmp_path / "logs" / "p.jsonl").write_text("\n".join(lines) + "\n")
    config = {
        "model": {"name": "m"},
        "reference": {"path": "reference.csv", "target": "label"},
        "sources": {"predictions": [{"paths": ["logs/*.jsonl"]}]},
        "drift": {"reports": "none"},
        "storage": {"url": db_url},
    }
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_fold_once_finalize_changed_windows_and_flag_the_shift(workspace: Path) -> None:
    with App(load(workspace / "driftd.yaml")) as app:
        assert app.reference.schema == SCHEMA
        app.ingest()
        summary = Statistics().run(app).summary
        assert summary["rows"] == 2400 and summary["finalized"] == 6
        results = {w.start.hour: w for w in app.window_results()}
        for hour in range(3):
            assert not results[hour].drift.drifted, results[hour].drift
        for hour in range(3, 6):
            drift = results[hour].drift
            drifted = {c.column for c in drift.columns if c.drifted}
            assert drifted == {"amount", "country"}, drift
            assert drift.share == pytest.approx(2 / 6)
            [new] = [q for q in results[hour].quality_failed if q.check == "new_categories"]
            assert new.column == "country" and "'BR'" in new.detail
        # every column used its calibrated threshold for its window size
        calibration = results[0].calibration
        assert calibration is not None and calibration.mode == "calibrated"
        assert results[0].drift.control == "fdr"
        assert {c.column for c in results[0].drift.columns} == set(SCHEMA)
        assert all(c.null_p is not None for c in results[0].drift.columns)

        # nothing new: nothing folded, nothing finalized again
        again = Statistics().run(app).summary
        assert (again["rows"], again["finalized"]) == (0, 0)

        # a late record updates only the window it belongs to
        late = record(
            99_999,
            datetime(2026, 11, 2, 1, 30, tzinfo=UTC),
            draw(np.random.default_rng(1), 1).iloc[0],
        )
        with open(workspace / "logs" / "p.jsonl", "a") as fh:
            fh.write(late + "\n")
        app.ingest()
        late_run = Statistics().run(app).summary
        assert late_run["rows"] == 1 and late_run["finalized"] == 1
        assert late_run["windows"] == ["2026-11-02T01:00:00+00:00"]
        window = {w.start.hour: w for w in app.window_results()}[1]
        assert window.rows == 401


def test_a_restarted_engine_resumes_from_its_cursor(workspace: Path) -> None:
    config = load(workspace / "driftd.yaml")
    with App(config) as app:
        app.ingest()
        engine = app.statistics_engine
        engine.batch_rows = 1000
        first = engine.fold()
        assert first.rows == 2400
    with App(config) as fresh:  # a new process: profile and cursor come from the store
        assert Statistics().run(fresh).summary["rows"] == 0
        states = fresh.statistics_repository.states(
            "m", [datetime(2026, 11, 2, h, tzinfo=UTC) for h in range(6)]
        )
        assert all(json.loads(s)["rows"] == 400 for s in states.values())


def test_calibration_is_paid_once_and_stored_with_the_profile(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The null distributions are fitted with the profile and stored in it: a second
    `driftd once` (a new process: a new App) fits nothing and finds them in the store."""
    import monitor.drift.profile as profile_module

    fitted: list[int] = []
    real = profile_module.fit_nulls

    def counting(profile: object, **options: object) -> object:
        fitted.append(1)
        return real(profile, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(profile_module, "fit_nulls", counting)
    config = load(workspace / "driftd.yaml")
    with App(config) as app:
        app.ingest()
        assert Statistics().run(app).summary["finalized"] == 6
    assert len(fitted) == 1
    with App(config) as again:
        stored = again.statistics_repository.profile("m", "reference")
        assert stored is not None
        assert set(profile_from_stored(stored)[0].nulls) == set(SCHEMA)
        with open(workspace / "logs" / "p.jsonl", "a") as fh:
            ts = datetime(2026, 11, 2, 2, 30, tzinfo=UTC)
            fh.write(record(77_777, ts, draw(np.random.default_rng(2), 1).iloc[0]) + "\n")
        again.ingest()
        assert Statistics().run(again).summary["finalized"] == 1
    assert len(fitted) == 1  # no calibration work in the second process


def test_stationary_windows_rarely_alarm_with_calibrated_thresholds() -> None:
    """200 windows drawn from the reference distribution: dataset drift in at most 2%.

    With Evidently's fixed default thresholds the same small windows alarm far more
    often per column, which is what calibration is for."""
    rng = np.random.default_rng(5)
    reference = draw(rng, 10_000)
    profile = fit_profile(
        {c: reference[c].to_numpy(dtype=object if c != "amount" else float) for c in SCHEMA},
        SCHEMA,
        model_version="1",
    )
    calibrated = StatisticsEngine(repository=None, model="m", profile=profile)  # type: ignore[arg-type]
    fixed = StatisticsEngine(
        repository=None,
        model="m",
        profile=profile,  # type: ignore[arg-type]
        settings=DriftSettings(threshold=0.1, multivariate=False),
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    alarms = {"calibrated": [0, 0], "fixed": [0, 0]}  # [dataset alarms, column alarms]
    joint = {"domain_classifier": 0, "pca_reconstruction": 0}
    for w in range(200):
        window = draw(rng, 150)
        state = partial(
            {c: window[c].tolist() for c in SCHEMA},
            row_keys([f"{w}-{i}" for i in range(150)]),
            profile,
        )
        for name, engine in (("calibrated", calibrated), ("fixed", fixed)):
            results = engine.window_results(state, start, start, 150)
            alarms[name][0] += results.drift.drifted
            alarms[name][1] += results.drift.drifted_columns
            for m in results.multivariate:
                joint[m.detector] += m.drifted
    assert alarms["calibrated"][0] <= 4, alarms  # at most 2% of 200 windows
    assert alarms["calibrated"][1] <= 0.03 * 200 * len(SCHEMA), alarms
    assert alarms["fixed"][1] > 3 * max(alarms["calibrated"][1], 1), alarms
    assert joint["domain_classifier"] <= 4 and joint["pca_reconstruction"] <= 4, joint


def test_numeric_scores_of_windows_beyond_their_sample_are_exact(workspace: Path) -> None:
    """Windows of 400 rows with a 100-row sample: the first run scores the values it
    folded, a later run (the window's state already stored) re-reads the window's rows;
    both equal the batch computation on all the window's values."""
    from monitor.drift.compare import column_drift, reference_column

    config = yaml.safe_load((workspace / "driftd.yaml").read_text())
    config["drift"]["sample_size"] = 100
    (workspace / "driftd.yaml").write_text(yaml.safe_dump(config))
    lines = (workspace / "logs" / "p.jsonl").read_text().splitlines()
    with App(load(workspace / "driftd.yaml")) as app:
        app.ingest()
        Statistics().run(app)
        late = record(
            88_888,
            datetime(2026, 11, 2, 4, 30, tzinfo=UTC),
            draw(np.random.default_rng(3), 1).iloc[0],
        )
        with open(workspace / "logs" / "p.jsonl", "a") as fh:
            fh.write(late + "\n")
        app.ingest()
        Statistics().run(app)  # window 4 again: its state was stored, its rows are re-read
        engine = app.statistics_engine
        for hour in (3, 4):
            rows = [json.loads(line) for line in lines + [late]]
            features = [r["features"] for r in rows if datetime.fromisoformat(r["ts"]).hour == hour]
            results = {w.start.hour: w for w in app.window_results()}[hour]
            for c in results.drift.columns:
                if SCHEMA[c.column] is not FeatureType.NUMERIC:
                    continue
                values = np.array([f[c.column] for f in features], dtype=float)
                exact = column_drift(
                    c.column,
                    reference_column(engine.profile.columns[c.column]),
                    values,
                    "numeric",
                    method=c.method,
                    threshold=c.threshold,
                )
                assert c.basis in ("exact", "binned"), c
                assert c.n_current == exact.n_current == len(features)
                assert c.score is not None
                if c.basis == "exact":
                    assert c.score == pytest.approx(exact.score, abs=1e-12)
                else:
                    assert c.error_bound is not None
                    assert abs(c.score - exact.score) <= c.error_bound
                assert c.drifted == exact.drifted


def test_memoized_calibrated_thresholds_equal_the_computed_ones() -> None:
    from monitor.drift.nulls import ColumnNull
    from monitor.drift.thresholds import Calibrated, MemoCalibrated

    null = ColumnNull(n_reference=20_000, categories=6)
    plain, memo = Calibrated(null, 0.01), MemoCalibrated(null, 0.01)
    for n in (50, 139, 140, 139, 5000, 139):
        for method in ("jensenshannon", "chisquare", "psi"):
            assert memo.threshold(method, n, "categorical") == plain.threshold(
                method, n, "categorical"
            )
    assert len(memo._limits) == 4 * 3  # computed once per method and window size
    assert isinstance(memo, Calibrated)  # compare.column_drift treats it as one


def test_a_grown_window_is_scored_from_its_stored_values_not_its_rows(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values an exact score needs are stored with the window (runs per column,
    written by ingestion): a later run of a grown window reads them instead of decoding
    the window's rows again; a window without them (stored before they were) is re-read
    once and then has them."""
    from storage import schema
    from storage.statistics import StatisticsRepository

    config = yaml.safe_load((workspace / "driftd.yaml").read_text())
    config["drift"]["sample_size"] = 100
    (workspace / "driftd.yaml").write_text(yaml.safe_dump(config))
    reread: list[datetime] = []
    original = StatisticsRepository.window_features

    def spy(self: StatisticsRepository, model: str, start: datetime, chunk: int = 10_000):  # type: ignore[no-untyped-def]  # noqa: E501
        reread.append(start)
        return original(self, model, start, chunk)

    monkeypatch.setattr(StatisticsRepository, "window_features", spy)
    hour4 = datetime(2026, 11, 2, 4, tzinfo=UTC)

    def late(i: int) -> None:
        row = draw(np.random.default_rng(i), 1).iloc[0]
        with open(workspace / "logs" / "p.jsonl", "a") as fh:
            fh.write(record(90_000 + i, hour4 + timedelta(minutes=30 + i), row) + "\n")

    with App(load(workspace / "driftd.yaml")) as app:
        app.ingest()
        Statistics().run(app)
        assert reread == []  # the first run scores the values its fold stored
        repository = app.statistics_repository
        numeric = sum(kind is FeatureType.NUMERIC for kind in SCHEMA.values())

        def runs() -> int:
            return len(repository.window_value_runs("m", hour4, repository.cursor("m")))

        first = runs()  # a run per column and ingested chunk
        assert first >= numeric and first % numeric == 0
        late(1)
        app.ingest()
        Statistics().run(app)
        assert reread == []
        assert runs() == first + numeric  # the late row's
        with repository.store.transaction() as conn:  # as if stored before runs existed
            conn.execute(schema.window_values.delete())
        late(2)
        app.ingest()
        Statistics().run(app)
        assert reread == [hour4]  # once: the values are stored again
        assert runs() == numeric
        late(3)
        app.ingest()
        Statistics().run(app)
        assert reread == [hour4]
        results = {w.start: w for w in app.window_results()}[hour4]
        assert results.rows == 403
        assert all(
            c.basis in ("exact", "binned") and c.n_current == 403
            for c in results.drift.columns
            if SCHEMA[c.column] is FeatureType.NUMERIC
        )
        # a window that keeps growing: a column's runs are merged back into one once it
        # is spread over more than MAX_RUNS of them (fewer here than the default, 128)
        from monitor import window_values

        monkeypatch.setattr(window_values, "MAX_RUNS", 4)
        counts = []
        for i in range(4, 4 + 2 * 4):
            late(i)
            app.ingest()
            Statistics().run(app)
            counts.append(runs())
        assert max(counts) <= numeric * 4 and counts.count(numeric) >= 1
        assert reread == [hour4]
