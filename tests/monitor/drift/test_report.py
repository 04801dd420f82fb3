"""The Evidently detail report: built with driftd's methods, thresholds and drift share,
so that it decides as driftd does, and robust to a column without values (issue 10)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor.drift.compare import compare
from monitor.drift.report import drift_report, report_options, write_drift_report
from monitor.records import FeatureType

SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "age": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
}


def frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    g = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {
            "amount": g.lognormal(3, 0.5, 4000),
            "age": g.normal(40, 10, 4000),
            "country": g.choice(["DE", "FR", "US"], 4000, p=[0.5, 0.3, 0.2]),
        }
    )
    current = pd.DataFrame(
        {
            "amount": g.lognormal(3.05, 0.5, 2000),
            "age": g.normal(40, 10, 2000),
            "country": g.choice(["DE", "FR", "US"], 2000, p=[0.45, 0.35, 0.2]),
        }
    )
    return reference, current


def decisions(snapshot: object) -> dict[str, bool]:
    data = snapshot.dict()  # type: ignore[attr-defined]
    out = {}
    for test in data["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            out[params["column"]] = test["status"] == "FAIL"
    return out


@pytest.mark.filterwarnings("ignore")
def test_the_report_decides_with_driftds_methods_and_thresholds() -> None:
    reference, current = frames(1)
    # thresholds well below Evidently's defaults (as calibrated ones are at this size)
    methods = {"amount": "wasserstein", "age": "ks", "country": "jensenshannon"}
    thresholds = {"amount": 0.05, "age": 0.01, "country": 0.03}
    ours = compare(
        {c: reference[c].to_numpy() for c in SCHEMA},
        {c: current[c].to_numpy() for c in SCHEMA},
        {c: str(k) for c, k in SCHEMA.items()},
        methods=methods,
        thresholds=thresholds,
    )
    options = report_options(ours)
    assert options["thresholds"] == thresholds and options["methods"] == methods
    snapshot, skipped = drift_report(reference, current, SCHEMA, **options)
    assert skipped == {}
    assert decisions(snapshot) == {c.column: c.drifted for c in ours.columns}
    # with Evidently's defaults the moderate shifts go unseen
    default, _ = drift_report(reference, current, SCHEMA)
    assert decisions(default) != decisions(snapshot)


@pytest.mark.filterwarnings("ignore")
def test_a_column_without_reference_values_is_left_out_with_a_note(tmp_path: Path) -> None:
    reference, current = frames(2)
    reference["age"] = np.nan  # Evidently: "ValueError: An empty column"
    path = tmp_path / "report.html"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        skipped = write_drift_report(reference, current, SCHEMA, path)
    assert skipped == {"age": "no values in the reference"}
    text = path.read_text()
    assert "Columns left out" in text and "age: no values in the reference" in text
