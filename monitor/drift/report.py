"""The detailed drift report of a window: Evidently's DataDriftPreset as HTML.

Evidently is slow and memory-hungry on large data (DESIGN.md), so it only renders the
report, on capped samples: the reference rows (at most ``max_rows``) against the window's
row sample. driftd's own statistics never go through it. The report uses driftd's method
and threshold per column and its drift share (:func:`report_options`), so its decisions
are driftd's; its scores are those of the samples it is given (driftd's verdict is on all
the window's values, so near a threshold the two can differ).
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

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


class ColumnVerdict(Protocol):
    """What the report reads of a column's drift (a ColumnDrift or a stored result)."""

    @property
    def column(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def threshold(self) -> float | None: ...


class DriftVerdict(Protocol):
    """What the report reads of a window's drift (a DatasetDrift or a stored result)."""

    @property
    def columns(self) -> Sequence[ColumnVerdict]: ...

    @property
    def drift_share(self) -> float: ...


def report_options(drift: DriftVerdict | None) -> dict[str, Any]:
    """driftd's own choices for a window's report, from its drift verdict: the method
    and threshold each column was judged with, and the drift share, so that Evidently's
    report decides as driftd did."""
    if drift is None:
        return {}
    columns = [c for c in drift.columns if c.threshold is not None and math.isfinite(c.threshold)]
    return {
        "methods": {c.column: c.method for c in columns},
        "thresholds": {c.column: float(c.threshold) for c in columns if c.threshold is not None},
        "drift_share": float(drift.drift_share),
    }


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Mapping[str, FeatureType],
    *,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
) -> tuple[Any, dict[str, str]]:
    """Evidently's data-drift snapshot of ``current`` against ``reference`` with driftd's
    ``methods``, per-column ``thresholds`` and ``drift_share``, and the columns left out.

    Columns without a value on either side are left out (Evidently raises "An empty
    column" on them), with the reason."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    skipped = {
        name: f"no values in the {side}"
        for name in schema
        if name in current and name in reference
        for side, frame in (("current window", current), ("reference", reference))
        if frame[name].notna().sum() == 0
    }
    used = [n for n in schema if n in current and n in reference and n not in skipped]
    numeric = [n for n in used if schema[n] is FeatureType.NUMERIC]
    categorical = [n for n in used if schema[n] is not FeatureType.NUMERIC]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(
        columns=used,
        drift_share=drift_share,
        per_column_method={n: m for n, m in (methods or {}).items() if n in used} or None,
        per_column_threshold={n: t for n, t in (thresholds or {}).items() if n in used} or None,
    )
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current[used], data_definition=definition),
        Dataset.from_pandas(reference[used], data_definition=definition),
    )
    return snapshot, skipped


def write_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Mapping[str, FeatureType],
    path: Path,
    *,
    title: str = "",
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
) -> dict[str, str]:
    """Render :func:`drift_report` to ``path`` as HTML; columns left out are listed at
    its top, and returned with the reason."""
    snapshot, skipped = drift_report(
        reference,
        current,
        schema,
        methods=methods,
        thresholds=thresholds,
        drift_share=drift_share,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    if skipped:
        _note(path, skipped)
        logger.warning("drift report %s leaves out %s", path, skipped)
    logger.info("wrote drift report %s%s", path, f" ({title})" if title else "")
    return skipped


def _note(path: Path, skipped: Mapping[str, str]) -> None:
    items = "".join(f"<li>{html.escape(n)}: {html.escape(why)}</li>" for n, why in skipped.items())
    banner = (
        f'<div style="padding:8px;font-family:sans-serif">Columns left out:<ul>{items}</ul></div>'
    )
    text = path.read_text(encoding="utf-8")
    at = text.find("<body")
    at = text.find(">", at) + 1 if at >= 0 else 0
    path.write_text(text[:at] + banner + text[at:], encoding="utf-8")
