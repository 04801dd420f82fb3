"""Requests and responses of ``driftd serve``, built from driftd's feature schema.

A request is ``{"id": "...", "features": {...}}``: every feature of the schema present
(``null`` for a missing value), nothing else, each of its type. Numbers are JSON numbers
(finite, 64-bit integers at most), booleans ``true``/``false``, categories text. The
checks are stricter than ingestion's on purpose: what the service accepts, ingestion
stores, and the model gets the types it was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    create_model,
)

from monitor.records import FeatureType

MAX_ID_LENGTH = 200  # what ingestion stores (monitor.records.RecordSpec.max_id_length)
_INT64 = 2**63


def _number(value: Any) -> int | float | None:
    """A JSON number ingestion can store: finite, an integer within 64 bits, not a bool."""
    kind = type(value)
    if value is None or (kind is float and math.isfinite(value)):
        return value  # type: ignore[no-any-return]
    if kind is int and -_INT64 <= value < _INT64:
        return value  # type: ignore[no-any-return]
    if kind is float:
        raise ValueError(f"expected a finite number, got {value!r}")
    if kind is int:
        raise ValueError("expected a number within 64 bits")
    raise ValueError(f"expected a number, got {kind.__name__}")


# one validator, so a refusal's `loc` ends with the feature's name
Number = Annotated[
    int | float | None,
    PlainValidator(_number),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"}]}),
]
_TYPES: dict[FeatureType, Any] = {
    FeatureType.NUMERIC: Number,
    FeatureType.BOOLEAN: StrictBool | None,
    FeatureType.CATEGORICAL: StrictStr | None,
}

RequestId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00]*$")]


class PredictionOut(BaseModel):
    """The response: what the log holds for this request, without the features."""

    id: str
    model_version: str
    variant: str
    prediction: Any
    score: float | None = None
    probabilities: dict[str, float] | None = None


def request_model(schema: Mapping[str, FeatureType]) -> type[BaseModel]:
    """The pydantic model of a prediction request for this feature schema."""
    if not schema:
        raise ValueError("a prediction request needs at least one feature in the schema")
    strict = ConfigDict(extra="forbid", frozen=True)
    fields: dict[str, Any] = {
        name: (_TYPES[FeatureType(kind)], ...) for name, kind in schema.items()
    }
    features = create_model("Features", __config__=strict, **fields)
    return create_model(
        "PredictionRequest",
        __config__=strict,
        id=(RequestId | None, None),
        features=(features, ...),
    )


def feature_frame(
    rows: Sequence[Mapping[str, Any]], schema: Mapping[str, FeatureType]
) -> pd.DataFrame:
    """The rows as the model's input frame: numbers as float (null as NaN), booleans as
    bool (object with NaN when one is null), categories as object (null as NaN)."""
    columns: dict[str, Any] = {}
    for name, kind in schema.items():
        values = [row[name] for row in rows]
        if kind is FeatureType.NUMERIC:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif kind is FeatureType.BOOLEAN and None not in values:
            columns[name] = np.array(values, dtype=bool)
        else:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=object)
    return pd.DataFrame(columns)
