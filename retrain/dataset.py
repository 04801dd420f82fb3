"""The next training set: the reference plus matured labelled production rows.

:func:`production_frame` turns stored rows (:func:`storage.training.training_rows`,
reviews already overriding production labels) into a frame with provenance columns;
:func:`assemble` joins it with the reference and splits by time::

    reference (no time; seeded order) + production rows in [end - lookback, end)
        where end = now - maturity (younger rows may still lack their labels)
    duplicates removed (same id, then same features and label: the latest kept)
    final test  = holdout-eligible production rows of the last ``test_window``
    validation  = the latest ``validation_share`` of the other eligible rows
    train       = everything else (reviewed rows always train: a reviewer chose
                  them, so they are no sample of production)

The final test is touched once, by the gates; validation serves early stopping and the
hyperparameter search. :func:`validate` is the data-validation gate that runs before
any training: schema, types, missing shares, constant columns, labels, label balance
and label shift against the reference (:mod:`retrain.validation`). A failed check
blocks training with its reason.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from retrain.validation import ValidationReport, binary_label, validate
from storage.store import Store
from storage.training import TrainingRow, training_rows

logger = logging.getLogger(__name__)

TS, ID, SOURCE, ELIGIBLE, REVIEW_STATE = "ts", "id", "source", "holdout_eligible", "review_state"
REFERENCE = "reference"
META = (ID, TS, SOURCE, ELIGIBLE, REVIEW_STATE)


@dataclass(frozen=True)
class DatasetSpec:
    """The ``retrain.dataset`` config section."""

    features: Mapping[str, str]
    target: str
    lookback: timedelta = timedelta(days=30)
    maturity: timedelta = timedelta(0)  # how long labels take to arrive
    test_window: timedelta = timedelta(days=1)
    validation_share: float = 0.2
    seed: int = 0
    min_train_rows: int = 1000
    min_validation_rows: int = 200
    min_test_rows: int = 200
    min_test_positives: int = 10
    max_type_error_share: float = 0.01
    max_missing_share: float = 0.5
    max_missing_increase: float = 0.2  # over the reference's missing share
    min_positive_share: float = 0.001
    max_prevalence_ratio: float = 5.0  # production vs reference positive share, either way

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_share < 1.0:
            raise ValueError(f"validation_share must be in (0, 1), got {self.validation_share!r}")
        if self.lookback <= self.test_window:
            raise ValueError(
                f"lookback {self.lookback} must be longer than test_window {self.test_window}"
            )
        if self.max_prevalence_ratio < 1.0:
            raise ValueError(
                f"max_prevalence_ratio must be >= 1, got {self.max_prevalence_ratio!r}"
            )


@dataclass(frozen=True)
class TrainingSet:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    start: datetime  # production rows from here ...
    end: datetime  # ... to here (exclusive)
    test_start: datetime
    validation_report: ValidationReport
    target: str
    provenance: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def baseline_rate(self) -> float:
        """The positive share of the train split: the trivial model's constant score."""
        return float(self.train[self.target].astype(float).mean())


def window(spec: DatasetSpec, now: datetime) -> tuple[datetime, datetime]:
    """The production rows' time range ``[start, end)`` for a training set made at ``now``."""
    end = now - spec.maturity
    return end - spec.lookback, end


def production_frame(rows: Sequence[TrainingRow], spec: DatasetSpec) -> pd.DataFrame:
    """One row per stored row: its features, label and provenance columns."""
    records = []
    for r in rows:
        record = {name: r.features.get(name) for name in spec.features}
        record.update(
            {
                spec.target: binary_label(r.label),
                ID: r.id,
                TS: r.ts,
                SOURCE: r.source,
                ELIGIBLE: r.holdout_eligible,
                REVIEW_STATE: r.review_state,
            }
        )
        records.append(record)
    columns = [*spec.features, spec.target, *META]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame[TS] = pd.to_datetime(frame[TS], utc=True)
    return frame


def load_production(store: Store, model: str, spec: DatasetSpec, *, now: datetime) -> pd.DataFrame:
    """The labelled production rows a training set made at ``now`` may use."""
    start, end = window(spec, now)
    return production_frame(training_rows(store, model, start=start, end=end), spec)


def assemble(
    reference: pd.DataFrame, production: pd.DataFrame, spec: DatasetSpec, *, now: datetime
) -> TrainingSet:
    """Join, deduplicate and split by time, then validate (see the module docstring)."""
    start, end = window(spec, now)
    test_start = end - spec.test_window
    ref = reference.sample(frac=1.0, random_state=spec.seed).reset_index(drop=True).copy()
    ref[spec.target] = ref[spec.target].map(binary_label) if spec.target in ref else None
    ref[ID], ref[TS], ref[SOURCE], ref[ELIGIBLE], ref[REVIEW_STATE] = (
        None,
        pd.NaT,
        REFERENCE,
        False,
        None,
    )
    prod = production.copy()
    if len(prod):
        prod[TS] = pd.to_datetime(prod[TS], utc=True)
        prod = prod[(prod[TS] >= start) & (prod[TS] < end)].sort_values([TS, ID], kind="stable")
        prod = prod.drop_duplicates(subset=[ID], keep="last")
    ref[TS] = pd.to_datetime(ref[TS], utc=True)
    columns = [
        c for c in [*spec.features, spec.target, *META] if c in ref.columns or c in prod.columns
    ]
    with warnings.catch_warnings():
        # pandas 2 warns that an all-missing column (a broken production column, the
        # reference's empty provenance) will weigh in the result dtype; either dtype
        # works here, the trainers and the checks coerce every column themselves
        warnings.simplefilter("ignore", FutureWarning)
        rows = pd.concat(
            [ref.reindex(columns=columns), prod.reindex(columns=columns)], ignore_index=True
        )
    before = len(rows)
    key = [c for c in [*spec.features, spec.target] if c in rows.columns]
    hashed = pd.util.hash_pandas_object(rows[key].astype(str), index=False)
    rows = rows[~hashed.duplicated(keep="last")]
    duplicates = before - len(rows)
    is_test = rows[ELIGIBLE].astype(bool) & (rows[TS] >= test_start)
    test = rows[is_test]
    rest = rows[~is_test]
    eligible = rest[(rest[SOURCE] != "review")]
    k = max(spec.min_validation_rows, int(round(spec.validation_share * len(rest))))
    validation = eligible.tail(min(k, len(eligible)))
    train = rest.drop(index=validation.index)
    provenance = {
        name: {str(s): int(n) for s, n in part[SOURCE].value_counts().sort_index().items()}
        for name, part in (("train", train), ("validation", validation), ("test", test))
    }
    provenance["removed"] = {"duplicates": int(duplicates)}
    report = validate(reference, prod, train, validation, test, spec)
    logger.info(
        "training set: %d train, %d validation, %d test rows; %s",
        len(train),
        len(validation),
        len(test),
        report.reason(),
    )
    return TrainingSet(
        train=train.reset_index(drop=True),
        validation=validation.reset_index(drop=True),
        test=test.reset_index(drop=True),
        start=start,
        end=end,
        test_start=test_start,
        validation_report=report,
        target=spec.target,
        provenance=provenance,
    )
