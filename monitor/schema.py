"""Feature types inferred from the reference table when the config gives none."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from monitor.records import FeatureType


def infer_schema(frame: pd.DataFrame, *, exclude: Iterable[str] = ()) -> dict[str, FeatureType]:
    """Numeric, boolean or categorical per column, from pandas dtypes.

    Object columns that hold only true/false values are boolean; everything that is not
    numeric or boolean is categorical.
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
            else:
                schema[name] = FeatureType.CATEGORICAL
    return schema


def read_table(path: str, *, nrows: int | None = None) -> pd.DataFrame:
    """A reference table from CSV or Parquet (by file extension)."""
    if str(path).endswith((".parquet", ".pq")):
        frame = pd.read_parquet(path)
        return frame if nrows is None else frame.head(nrows)
    return pd.read_csv(path, nrows=nrows)
