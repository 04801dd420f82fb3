"""The next training set: time split, reviews, duplicates, and the data-validation gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from driftd.demo.data import FEATURES, TARGET, make_reference
from retrain.dataset import DatasetSpec, assemble, load_production, production_frame
from storage import schema
from storage.store import Store
from storage.training import TrainingRow

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
SPEC = DatasetSpec(
    features=FEATURES,
    target=TARGET,
    lookback=timedelta(days=10),
    maturity=timedelta(days=1),
    test_window=timedelta(days=2),
    validation_share=0.2,
    min_train_rows=500,
    min_validation_rows=100,
    min_test_rows=100,
    min_test_positives=5,
)


def rows_from(frame: pd.DataFrame, start: datetime, step: timedelta) -> list[TrainingRow]:
    out = []
    for i, record in enumerate(frame.to_dict("records")):
        label = record.pop(TARGET)
        features = {
            k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()
        }
        out.append(
            TrainingRow(
                id=f"p{i}",
                ts=start + i * step,
                features=features,
                label=int(label),
                source="production",
                production_label=int(label),
                review_state=None,
                reviewer=None,
                reviewed_at=None,
                holdout_eligible=True,
                score=None,
                prediction=None,
                model_version="1",
                variant="champion",
            )
        )
    return out


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_reference(2000, seed=0)


@pytest.fixture(scope="module")
def production_rows() -> list[TrainingRow]:
    # 12 days of rows, 1 every 6 minutes: 2880 rows from NOW - 12 days
    return rows_from(make_reference(2880, seed=1), NOW - timedelta(days=12), timedelta(minutes=6))


def test_split_by_time_with_reviews_training_only(reference, production_rows) -> None:  # type: ignore[no-untyped-def]
    rows = list(production_rows)
    # a reviewed row inside the final-test window trains, it is no sample of production
    reviewed = rows[-300]
    rows[-300] = TrainingRow(
        **{**reviewed.__dict__, "source": "review", "holdout_eligible": False, "label": 1}
    )
    rows.append(rows[300])  # the same id twice (a re-delivered row)
    frame = production_frame(rows, SPEC)
    ts = assemble(reference, frame, SPEC, now=NOW)

    end = NOW - SPEC.maturity
    assert (ts.start, ts.end, ts.test_start) == (end - SPEC.lookback, end, end - SPEC.test_window)
    assert ts.validation_report.passed, ts.validation_report.reason()
    test_times = ts.test["ts"]
    assert test_times.min() >= ts.test_start and test_times.max() < end
    assert (ts.test["source"] == "production").all()
    assert len(ts.test) == 2 * 240 - 1  # two days of rows, minus the reviewed one
    assert reviewed.id in set(ts.train["id"])
    # validation: the latest rows before the final test, none of them reviewed
    assert ts.validation["ts"].max() < ts.test_start
    trained = ts.train[ts.train["source"] == "production"]
    assert ts.validation["ts"].min() > trained["ts"].max()
    assert len(ts.validation) == round(0.2 * (len(ts.train) + len(ts.validation)))
    # nothing younger than the maturity, nothing older than the lookback
    produced = pd.concat([ts.train, ts.validation, ts.test]).dropna(subset=["id"])
    assert produced["ts"].min() >= ts.start and produced["ts"].max() < end
    assert produced["id"].is_unique
    assert len(produced) == 10 * 240  # [NOW - 11 days, NOW - 1 day), each row once
    assert ts.provenance["train"] == {
        "production": len(ts.train) - 2001,
        "reference": 2000,
        "review": 1,
    }
    assert ts.provenance["test"] == {"production": len(ts.test)}
    assert ts.baseline_rate == pytest.approx(ts.train[TARGET].mean())


def test_duplicate_rows_keep_the_latest(reference, production_rows) -> None:  # type: ignore[no-untyped-def]
    frame = production_frame(production_rows, SPEC)
    copy = reference.iloc[[0]].copy()  # a reference row that production repeats
    recent = frame.index[-1]
    for column in [*FEATURES, TARGET]:
        frame.loc[recent, column] = copy[column].iloc[0]
    ts = assemble(reference, frame, SPEC, now=NOW + timedelta(days=2))
    assert ts.provenance["removed"]["duplicates"] == 1
    assert ts.provenance["train"]["reference"] == 1999
    assert frame.loc[recent, "id"] in set(ts.test["id"])


def test_a_broken_column_blocks_training_with_its_reason(reference, production_rows) -> None:  # type: ignore[no-untyped-def]
    frame = production_frame(production_rows, SPEC)
    frame["amount"] = frame["amount"].map(lambda v: f"{v:.2f} EUR".replace(".", ","))
    report = assemble(reference, frame, SPEC, now=NOW).validation_report
    assert not report.passed
    assert [c.name for c in report.failed] == ["type:amount"]
    assert "'amount'" in report.reason() and "not numbers" in report.reason()
    assert "EUR" in report.reason()  # it shows what the bad values look like


def test_missing_and_constant_columns_block(reference, production_rows) -> None:  # type: ignore[no-untyped-def]
    frame = production_frame(production_rows, SPEC)
    frame["distance_km"] = None
    frame["merchant_category"] = "grocery"
    report = assemble(reference, frame, SPEC, now=NOW).validation_report
    failed = {c.name for c in report.failed}
    assert {"missing:distance_km", "constant:merchant_category"} <= failed
    assert "100.0% missing in production vs 0.0% in the reference" in report.reason()


def test_labels_that_are_not_binary_or_shifted_block(reference, production_rows) -> None:  # type: ignore[no-untyped-def]
    frame = production_frame(production_rows, SPEC)
    broken = frame.astype({TARGET: object})
    broken.loc[broken.index[1500:1503], TARGET] = "fraud?"  # inside the window
    report = assemble(reference, broken, SPEC, now=NOW).validation_report
    assert [c.name for c in report.failed] == ["labels"]
    assert "'fraud?'" in report.reason()

    shifted = frame.copy()
    shifted[TARGET] = (np.arange(len(frame)) % 2).astype(int)  # 50% positives vs ~5%
    report = assemble(reference, shifted, SPEC, now=NOW).validation_report
    assert "label_shift" in {c.name for c in report.failed}


def test_no_production_rows_blocks_for_want_of_a_final_test(reference) -> None:  # type: ignore[no-untyped-def]
    report = assemble(reference, production_frame([], SPEC), SPEC, now=NOW).validation_report
    assert not report.passed
    assert "test split has 0 rows" in report.reason()
    assert report.to_dict()["passed"] is False


def test_load_production_reads_the_window_from_the_store(sqlite_url: str, production_rows) -> None:  # type: ignore[no-untyped-def]
    store = Store(sqlite_url)
    store.migrate()
    try:
        with store.transaction() as conn:
            for r in production_rows[-600:]:
                conn.execute(
                    schema.predictions.insert(),
                    {
                        "model": "m",
                        "id": r.id,
                        "ts": r.ts,
                        "window_start": r.ts,
                        "features": json.dumps(r.features),
                        "prediction": "0",
                        "score": 0.1,
                    },
                )
                conn.execute(
                    schema.labels.insert(),
                    {"model": "m", "id": r.id, "label": json.dumps(r.label), "ts": r.ts},
                )
        frame = load_production(store, "m", SPEC, now=NOW)
    finally:
        store.dispose()
    end = NOW - SPEC.maturity
    assert len(frame) == 360  # the last 600 rows span 2.5 days; 1 day is not matured yet
    assert frame["ts"].max() < end
    assert set(frame[TARGET]) <= {0, 1}
    assert list(frame.columns[: len(FEATURES)]) == list(FEATURES)
