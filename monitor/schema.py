"""Feature types inferred from the reference table when the config gives none."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from monitor.records import FeatureType

MOSTLY_NUMERIC = 0.9  # a text column whose values are at least this share numbers


def infer_schema(frame: pd.DataFrame, *, exclude: Iterable[str] = ()) -> dict[str, FeatureType]:
    """Numeric, boolean or categorical per column, from pandas dtypes.

    Object columns that hold only true/false values are boolean; a text column whose
    present values are mostly (90%) numbers is numeric (see :func:`mixed_columns`);
    everything else that is not numeric or boolean is categorical.
    """
    skip = set(exclude)
    schema: dict[str, FeatureType] = {}
    for name in frame.columns:
        if name in skip:
            continue
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            schema[name] = FeatureType.BOOLEAN
        elif pd.api.types.is_numeric_dtype(column):
            schema[name] = FeatureType.NUMERIC
        else:
            values = set(column.dropna().unique().tolist())
            if values and values <= {True, False}:
                schema[name] = FeatureType.BOOLEAN
            elif _numeric_share(column) >= MOSTLY_NUMERIC:
                schema[name] = FeatureType.NUMERIC
            else:
                schema[name] = FeatureType.CATEGORICAL
    return schema


def _numeric_share(column: pd.Series) -> float:
    present = column.dropna()
    if present.empty:
        return 0.0
    return float(pd.to_numeric(present, errors="coerce").notna().mean())


def mixed_columns(frame: pd.DataFrame, schema: dict[str, FeatureType]) -> dict[str, str]:
    """What is odd about a column of the reference, and how driftd treats it: a column
    with no value at all, or text mixed with numbers."""
    notes = {}
    for name, kind in schema.items():
        if name not in frame:
            continue
        column = frame[name]
        present = column.dropna()
        if present.empty:
            notes[name] = "has no value in the reference: its drift cannot be measured (skipped)"
            continue
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        share = float(numbers.notna().mean())
        if share == 0:
            continue
        text = present[numbers.isna()].astype(str).unique()[:3].tolist()
        if kind is FeatureType.NUMERIC:
            notes[name] = (
                f"mixes numbers and text ({share:.0%} numbers; text such as {text}): treated "
                "as numeric, its text values as missing"
            )
        elif share > 0.01:
            notes[name] = (
                f"mixes numbers and text ({share:.0%} numbers): treated as categorical, so "
                "logged values that are not text or whole numbers will be quarantined as "
                "bad_feature_type; declare its type under `schema:` to decide"
            )
    return notes


def as_schema_types(frame: pd.DataFrame, schema: dict[str, FeatureType]) -> pd.DataFrame:
    """``frame`` with numeric columns of text turned to numbers (text as missing)."""
    out = frame.copy()
    for name, kind in schema.items():
        if kind is FeatureType.NUMERIC and name in out and out[name].dtype == object:
            out[name] = pd.to_numeric(out[name], errors="coerce")
    return out


def read_table(path: str, *, nrows: int | None = None) -> pd.DataFrame:
    """A reference table from CSV or Parquet (by file extension)."""
    if str(path).endswith((".parquet", ".pq")):
        frame = pd.read_parquet(path)
        return frame if nrows is None else frame.head(nrows)
    return pd.read_csv(path, nrows=nrows)
