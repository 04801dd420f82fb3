"""Validation of prediction and label records against driftd's log contract.

A record is a JSON object (or a CSV/Parquet row turned into one). Parsing is pure: a
parser takes the object and returns a row for storage, or raises :class:`Rejected` with
a :class:`Reason` that ingestion quarantines the record under.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


class Reason(StrEnum):
    """Why a record was quarantined."""

    BAD_JSON = "bad_json"
    INVALID_UTF8 = "invalid_utf8"
    NOT_AN_OBJECT = "not_an_object"
    LINE_TOO_LONG = "line_too_long"
    BAD_CSV_ROW = "bad_csv_row"
    MISSING_ID = "missing_id"
    BAD_ID = "bad_id"
    MISSING_TS = "missing_ts"
    BAD_TS = "bad_ts"
    MISSING_FEATURES = "missing_features"
    BAD_FEATURE_TYPE = "bad_feature_type"
    NON_FINITE = "non_finite"
    MISSING_PREDICTION = "missing_prediction"
    BAD_SCORE = "bad_score"
    MISSING_LABEL = "missing_label"


class Rejected(Exception):
    """A record that cannot be ingested; carries the quarantine reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class FeatureType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Fields:
    """Where each contract field is found in a record (a column mapping)."""

    id: str = "id"
    ts: str = "ts"
    features: str = "features"
    prediction: str = "prediction"
    score: str = "score"
    probabilities: str = "probabilities"
    model_version: str = "model_version"
    variant: str = "variant"
    label: str = "label"


@dataclass(frozen=True)
class RecordSpec:
    """What a valid record looks like: field names, feature types and limits."""

    fields: Fields = field(default_factory=Fields)
    schema: Mapping[str, FeatureType] = field(default_factory=dict)
    max_id_length: int = 200


def parse_ts(value: Any) -> datetime:
    """An aware UTC datetime from RFC 3339 text or epoch seconds.

    Text without an offset is taken as UTC (many loggers omit the ``Z``).
    """
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise Rejected(Reason.BAD_TS, f"unparseable timestamp {value[:64]!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise Rejected(Reason.BAD_TS, f"non-finite epoch timestamp {value!r}")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise Rejected(Reason.BAD_TS, f"epoch timestamp out of range {value!r}") from None
    elif isinstance(value, datetime):
        ts = value
    else:
        raise Rejected(Reason.BAD_TS, f"timestamp must be text, got {type(value).__name__}")
    if ts.tzinfo is UTC:
        return ts
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is no UTC time datetime can hold
        raise Rejected(Reason.BAD_TS, f"timestamp out of range {str(value)[:64]!r}") from None


def _record_id(obj: Mapping[str, Any], spec: RecordSpec) -> str:
    rid = obj.get(spec.fields.id)
    if rid is None or rid == "":
        raise Rejected(Reason.MISSING_ID, f"no {spec.fields.id!r} field")
    if isinstance(rid, bool) or not isinstance(rid, str | int):
        raise Rejected(Reason.BAD_ID, f"id must be text or integer, got {type(rid).__name__}")
    rid = str(rid)
    if len(rid) > spec.max_id_length:
        raise Rejected(Reason.BAD_ID, f"id longer than {spec.max_id_length} characters")
    if "\x00" in rid:  # no database text type holds NUL (PostgreSQL refuses it)
        raise Rejected(Reason.BAD_ID, "id contains a NUL character")
    return rid


def _record_ts(obj: Mapping[str, Any], spec: RecordSpec) -> datetime:
    value = obj.get(spec.fields.ts)
    if value is None:
        raise Rejected(Reason.MISSING_TS, f"no {spec.fields.ts!r} field")
    return parse_ts(value)


_NONE = type(None)
_SCALARS = frozenset({str, int, float, bool, _NONE})
_ALLOWED = {
    FeatureType.NUMERIC: frozenset({int, float, _NONE}),
    FeatureType.BOOLEAN: frozenset({bool, _NONE}),
    FeatureType.CATEGORICAL: frozenset({str, int, bool, _NONE}),
}
_EXPECTED = {
    FeatureType.NUMERIC: "a number",
    FeatureType.BOOLEAN: "true/false",
    FeatureType.CATEGORICAL: "text",
}


def _feature_error(name: str, value: Any, kind: FeatureType | None) -> Rejected:
    if isinstance(value, float) and not math.isfinite(value):
        return Rejected(Reason.NON_FINITE, f"feature {name!r} is {value!r}")
    expected = _EXPECTED.get(kind, "a number, text, true/false or null") if kind else None
    if expected is None:
        expected = "a number, text, true/false or null"
    try:
        shown = str(value)[:40]
    except RecursionError:  # a list nested a thousand deep
        shown = "..."
    return Rejected(
        Reason.BAD_FEATURE_TYPE,
        f"feature {name!r}: expected {expected}, got {type(value).__name__} {shown!r}",
    )


class _FeatureChecker:
    """Type checks of feature objects against the schema.

    The hot path of ingestion: records of one stream share few shapes (names and value
    types), so a shape that passed once is remembered and later records of that shape cost
    one dictionary lookup instead of one check per feature.
    """

    def __init__(self, spec: RecordSpec) -> None:
        self.spec = spec
        self.allowed = {name: _ALLOWED[kind] for name, kind in spec.schema.items()}
        self.good: set[tuple[Any, ...]] = set()

    def text(self, features: Any) -> str:
        """The features as JSON text for storage, once their types are checked."""
        if type(features) is not dict:
            raise Rejected(
                Reason.MISSING_FEATURES,
                f"{self.spec.fields.features!r} must be an object of features",
            )
        shape = (*features, *map(type, features.values()))
        if shape not in self.good:
            self._check(features, shape)
        try:
            return orjson.dumps(features).decode()
        except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, from CSV
            raise Rejected(Reason.BAD_FEATURE_TYPE, f"features cannot be stored: {exc}") from None

    def _check(self, features: dict[str, Any], shape: tuple[Any, ...]) -> None:
        allowed = self.allowed
        for name, value in features.items():
            if type(value) not in allowed.get(name, _SCALARS):
                raise _feature_error(name, value, self.spec.schema.get(name))
        if len(self.good) > 4096:
            self.good.clear()
        self.good.add(shape)


def find_non_finite(value: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinity inside a parsed JSON value, if any."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "value"
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_non_finite(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_non_finite(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _label_text(value: Any, name: str) -> str | None:
    """``model_version`` and ``variant`` as stored: text of at most 100 characters."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    if len(text) > 100 or "\x00" in text:
        raise Rejected(Reason.BAD_ID, f"{name!r} must be text of at most 100 characters")
    return text


def _features_of(obj: Mapping[str, Any], spec: RecordSpec) -> Any:
    features = obj.get(spec.fields.features)
    if features is None and spec.schema and spec.fields.features not in obj:
        # flat records (CSV, Parquet, flat JSON): the schema names the feature columns
        if not any(name in obj for name in spec.schema):
            raise Rejected(
                Reason.MISSING_FEATURES,
                f"no {spec.fields.features!r} object and none of the schema's features",
            )
        features = {name: obj.get(name) for name in spec.schema}
    if features is None:
        raise Rejected(Reason.MISSING_FEATURES, f"no {spec.fields.features!r} object")
    return features


def _check_score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(Reason.BAD_SCORE, f"score must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejected(Reason.NON_FINITE, f"score is {value!r}")
    if not 0.0 <= value <= 1.0:
        raise Rejected(Reason.BAD_SCORE, f"score {value!r} is not a probability in [0, 1]")
    return float(value)


def _dump(value: Any, reason: Reason, what: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, nesting beyond 254
        raise Rejected(reason, f"{what} cannot be stored as JSON: {exc}") from None


def _dump_prediction(value: Any) -> str:
    if type(value) is int and -(2**63) <= value < 2**64:
        return str(value)  # what orjson.dumps writes, for a fraction of the cost
    return _dump(value, Reason.MISSING_PREDICTION, "prediction")


WindowFn = Callable[[datetime], datetime | None]  # None: assigned when stored


def prediction_parser(spec: RecordSpec, window_of: WindowFn) -> Callable[[Any], dict[str, Any]]:
    """A function from a parsed record to a ``predictions`` row (without ``model``).

    The hot path of ingestion, so the common case of a field (a text id, a float score)
    is checked inline; anything else goes through the checks :func:`label_parser` uses
    too, which also word the errors.
    """
    f = spec.fields
    features_text = _FeatureChecker(spec).text
    id_key, ts_key, features_key, score_key = f.id, f.ts, f.features, f.score
    max_id = spec.max_id_length

    def parse(obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise Rejected(Reason.NOT_AN_OBJECT, f"record is a {type(obj).__name__}")
        rid = obj.get(id_key)
        if type(rid) is not str or not 0 < len(rid) <= max_id or "\x00" in rid:
            rid = _record_id(obj, spec)
        ts = obj.get(ts_key)
        ts = _record_ts(obj, spec) if ts is None else parse_ts(ts)
        features = obj.get(features_key)
        features = features_text(_features_of(obj, spec) if features is None else features)
        prediction = obj.get(f.prediction)
        probabilities = obj.get(f.probabilities)
        if prediction is None and probabilities is None:
            raise Rejected(Reason.MISSING_PREDICTION, f"no {f.prediction!r} field")
        if isinstance(prediction, float) and not math.isfinite(prediction):
            raise Rejected(Reason.NON_FINITE, f"prediction is {prediction!r}")
        score = obj.get(score_key)
        if type(score) is not float or not 0.0 <= score <= 1.0:
            score = _check_score(score)
        if probabilities is not None:
            if not isinstance(probabilities, dict) or not all(
                isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p)
                for p in probabilities.values()
            ):
                raise Rejected(Reason.BAD_SCORE, "probabilities must map class -> finite number")
        version = _label_text(obj.get(f.model_version), f.model_version)
        variant = _label_text(obj.get(f.variant), f.variant)
        return {
            "id": rid,
            "ts": ts,
            "window_start": window_of(ts),
            "model_version": version,
            "variant": variant,
            "features": features,
            "prediction": None if prediction is None else _dump_prediction(prediction),
            "score": score,
            "probabilities": None
            if probabilities is None
            else _dump(probabilities, Reason.BAD_SCORE, "probabilities"),
        }

    return parse


def label_parser(spec: RecordSpec) -> Callable[[Any], dict[str, Any]]:
    """A function from a parsed record to a ``labels`` row (without ``model``)."""
    f = spec.fields

    def parse(obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise Rejected(Reason.NOT_AN_OBJECT, f"record is a {type(obj).__name__}")
        rid = _record_id(obj, spec)
        ts = _record_ts(obj, spec)
        label = obj.get(f.label)
        if label is None:
            raise Rejected(Reason.MISSING_LABEL, f"no {f.label!r} field")
        if isinstance(label, float) and not math.isfinite(label):
            raise Rejected(Reason.NON_FINITE, f"label is {label!r}")
        if isinstance(label, dict | list):
            raise Rejected(Reason.MISSING_LABEL, "label must be a single value")
        return {"id": rid, "ts": ts, "label": _dump(label, Reason.MISSING_LABEL, "label")}

    return parse
