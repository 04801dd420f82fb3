"""The detailed drift report of a window: Evidently's DataDriftPreset as HTML.

Evidently is slow and memory-hungry on large data (DESIGN.md), so it only renders the
report, on capped samples: the reference rows (at most ``max_rows``) against the window's
row sample. driftd's own statistics never go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor.drift.profile import category_text
from monitor.records import FeatureType

logger = logging.getLogger(__name__)


def as_report_frame(columns: Mapping[str, Any], schema: Mapping[str, FeatureType]) -> pd.DataFrame:
    """Columns in the form both sides of the report share (categories as text)."""
    data = {}
    for name, kind in schema.items():
        values = columns.get(name)
        if values is None:
            continue
        if kind is FeatureType.NUMERIC:
            data[name] = pd.to_numeric(pd.Series(values), errors="coerce").astype(float)
        else:
            data[name] = pd.Series(
                [None if v is None or v != v else category_text(v) for v in values],
                dtype=object,
            )
    return pd.DataFrame(data)


def capped(frame: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=np.random.RandomState(seed))


def write_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Mapping[str, FeatureType],
    path: Path,
    *,
    title: str = "",
) -> Path:
    """Render Evidently's data-drift report of ``current`` against ``reference`` to ``path``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [n for n, k in schema.items() if k is FeatureType.NUMERIC and n in current]
    categorical = [n for n, k in schema.items() if k is not FeatureType.NUMERIC and n in current]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    logger.info("wrote drift report %s%s", path, f" ({title})" if title else "")
    return path
