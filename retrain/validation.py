"""The data-validation gate: may this training set be trained on?

Runs before any training, on the assembled splits (:func:`retrain.dataset.assemble`),
and compares production rows with the reference:

- schema: the reference and the production rows hold every feature and the target;
- types: numeric and boolean columns hold numbers (at most ``max_type_error_share``
  not);
- missing shares: at most ``max_missing_share``, and at most ``max_missing_increase``
  above the reference's share;
- constant columns: a column that varies in the reference is not constant in production;
- labels: every label is 0/1; each split has its minimum rows and both classes; the
  final test has ``min_test_positives``; the production positive share is within
  ``max_prevalence_ratio`` of the reference's, either way.

Each check is a frozen :class:`Check` with its reason; the report blocks on any failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from retrain.dataset import DatasetSpec

SOURCE, REFERENCE = "source", "reference"
_BINARY = {0: 0, 1: 1, "0": 0, "1": 1, "false": 0, "true": 1}  # True == 1, 1.0 == 1 too


def binary_label(value: Any) -> Any:
    """0/1 for the usual spellings of a binary label (True, 1.0, "1", "true"); other
    values unchanged, for the labels check to name."""
    key = value.lower() if isinstance(value, str) else value
    try:
        return _BINARY.get(key, value)
    except TypeError:  # unhashable (a list from a broken label source)
        return value


@dataclass(frozen=True)
class Check:
    name: str  # e.g. "missing:amount", "label_balance:train"
    passed: bool
    value: float | None
    limit: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ValidationReport:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def reason(self) -> str:
        return "; ".join(c.reason for c in self.failed) or "training data passed validation"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason(),
            "checks": [c.to_dict() for c in self.checks],
        }


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _missing(column: pd.Series) -> pd.Series:
    return column.isna() | column.astype(object).map(lambda v: v == "")


def _type_errors(column: pd.Series) -> pd.Series:
    present = column.notna()
    numbers = pd.to_numeric(column.astype(object).where(present), errors="coerce")
    return present & numbers.isna()


def _schema_checks(reference: pd.DataFrame, prod: pd.DataFrame, spec: DatasetSpec) -> list[Check]:
    out = []
    for name, frame in (("reference", reference), ("production", prod)):
        lacking = [c for c in [*spec.features, spec.target] if c not in frame.columns]
        out.append(
            Check(
                f"schema:{name}",
                not lacking,
                float(len(lacking)),
                0.0,
                f"{name} rows lack the columns {lacking!r}"
                if lacking
                else f"{name} schema complete",
            )
        )
    return out


def _column_checks(reference: pd.DataFrame, prod: pd.DataFrame, spec: DatasetSpec) -> list[Check]:
    out: list[Check] = []
    if len(prod) == 0:
        return out
    for name, kind in spec.features.items():
        if name not in prod.columns or name not in reference.columns:
            continue
        column = prod[name]
        if kind != "categorical":
            errors = _share(_type_errors(column))
            out.append(
                Check(
                    f"type:{name}",
                    errors <= spec.max_type_error_share,
                    errors,
                    spec.max_type_error_share,
                    f"column {name!r}: {errors:.1%} of production values are not numbers "
                    f"(limit {spec.max_type_error_share:.1%}), e.g. {_examples(column)!r}",
                )
            )
        missing, ref_missing = _share(_missing(column)), _share(_missing(reference[name]))
        limit = min(spec.max_missing_share, ref_missing + spec.max_missing_increase)
        out.append(
            Check(
                f"missing:{name}",
                missing <= limit,
                missing,
                limit,
                f"column {name!r}: {missing:.1%} missing in production vs {ref_missing:.1%} "
                f"in the reference (limit {limit:.1%})",
            )
        )
        values, ref_values = column.dropna().astype(str), reference[name].dropna().astype(str)
        constant = len(prod) >= 100 and values.nunique() <= 1 and ref_values.nunique() > 1
        out.append(
            Check(
                f"constant:{name}",
                not constant,
                float(values.nunique()),
                None,
                f"column {name!r} is constant in production ({values.iloc[0] if len(values) else None!r}) "
                f"but takes {ref_values.nunique()} values in the reference",
            )
        )
    return out


def _examples(column: pd.Series) -> list[str]:
    bad = column[_type_errors(column)]
    return [str(v) for v in bad.head(3)]


def _label_checks(
    reference: pd.DataFrame,
    splits: Mapping[str, pd.DataFrame],
    spec: DatasetSpec,
) -> list[Check]:
    out = []
    target = spec.target
    everything = pd.concat([s[target] for s in splits.values()], ignore_index=True)
    bad = everything[~everything.map(lambda v: isinstance(v, int | np.integer) and v in (0, 1))]
    out.append(
        Check(
            "labels",
            bad.empty,
            float(len(bad)),
            0.0,
            f"{len(bad)} labels of {target!r} are not 0/1, e.g. {[str(v) for v in bad.head(3)]!r}",
        )
    )
    if not bad.empty:
        return out
    minimum = {
        "train": spec.min_train_rows,
        "validation": spec.min_validation_rows,
        "test": spec.min_test_rows,
    }
    for name, part in splits.items():
        rows = len(part)
        out.append(
            Check(
                f"rows:{name}",
                rows >= minimum[name],
                float(rows),
                float(minimum[name]),
                f"{name} split has {rows} rows (minimum {minimum[name]})",
            )
        )
        share = float(part[target].astype(float).mean()) if rows else 0.0
        ok = rows > 0 and spec.min_positive_share <= share <= 1 - spec.min_positive_share
        out.append(
            Check(
                f"label_balance:{name}",
                ok,
                share,
                spec.min_positive_share,
                f"{name} split: positive share {share:.2%} (needs both classes, each at least "
                f"{spec.min_positive_share:.2%})",
            )
        )
    positives = int(splits["test"][target].astype(int).sum())
    out.append(
        Check(
            "positives:test",
            positives >= spec.min_test_positives,
            float(positives),
            float(spec.min_test_positives),
            f"the final test has {positives} positives (minimum {spec.min_test_positives})",
        )
    )
    production = pd.concat([s[s[SOURCE] != REFERENCE] for s in splits.values()])
    ref_labels = reference[target].map(binary_label)
    if len(production) >= 100 and ref_labels.isin([0, 1]).all() and ref_labels.mean() > 0:
        prod_share, ref_share = (
            float(production[target].astype(float).mean()),
            float(ref_labels.mean()),
        )
        ratio = prod_share / ref_share
        ok = 1 / spec.max_prevalence_ratio <= ratio <= spec.max_prevalence_ratio
        out.append(
            Check(
                "label_shift",
                ok,
                ratio,
                spec.max_prevalence_ratio,
                f"production positive share {prod_share:.2%} vs reference {ref_share:.2%} "
                f"(ratio {ratio:.2f}, limit {spec.max_prevalence_ratio:g}x either way)",
            )
        )
    return out


def validate(
    reference: pd.DataFrame,
    production: pd.DataFrame,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    spec: DatasetSpec,
) -> ValidationReport:
    """The data-validation gate: every check, each with its reason."""
    checks = _schema_checks(reference, production, spec)
    if all(c.passed for c in checks):
        checks += _column_checks(reference, production, spec)
        splits = {"train": train, "validation": validation, "test": test}
        checks += _label_checks(reference, splits, spec)
    return ValidationReport(tuple(checks))
