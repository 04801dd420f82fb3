"""Validation of prediction and label records against driftd's log contract.

A record is a JSON object (or a CSV/Parquet row turned into one). Parsing is pure: a
parser takes the object and returns a row for storage, or raises :class:`Rejected` with
a :class:`Reason` that ingestion quarantines the record under.

JSON lines of predictions have a faster path, :func:`prediction_line_parser`: it decodes
a line straight into typed structures (msgspec) and keeps the features' JSON text as
logged instead of building a dictionary and encoding it again. It takes only the lines
it can decide exactly as the general path would, and leaves every other line to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec
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
    return _check_id(obj.get(spec.fields.id), spec)


def _check_id(rid: Any, spec: RecordSpec) -> str:
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
    return _check_ts(obj.get(spec.fields.ts), spec)


def _check_ts(value: Any, spec: RecordSpec) -> datetime:
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
# a row's features as the fast path decoded them: a struct with field f<i> for the
# schema's i-th feature (monitor.blocks reads it); keys starting with "_" are not stored
PARSED_FEATURES = "_features"
Row = dict[str, Any]


def _row_finisher(spec: RecordSpec, window_of: WindowFn) -> Callable[..., Row]:
    """The checks after id, time and features, shared by both prediction parsers."""
    f = spec.fields

    def finish(
        rid: str,
        ts: datetime,
        features: str,
        prediction: Any,
        probabilities: Any,
        score: Any,
        version: Any,
        variant: Any,
    ) -> Row:
        if prediction is None and probabilities is None:
            raise Rejected(Reason.MISSING_PREDICTION, f"no {f.prediction!r} field")
        if isinstance(prediction, float) and not math.isfinite(prediction):
            raise Rejected(Reason.NON_FINITE, f"prediction is {prediction!r}")
        if type(score) is not float or not 0.0 <= score <= 1.0:
            score = _check_score(score)
        if probabilities is not None:
            if not isinstance(probabilities, dict) or not all(
                isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p)
                for p in probabilities.values()
            ):
                raise Rejected(Reason.BAD_SCORE, "probabilities must map class -> finite number")
        if type(version) is not str or len(version) > 100 or "\x00" in version:
            version = _label_text(version, f.model_version)
        if type(variant) is not str or len(variant) > 100 or "\x00" in variant:
            variant = _label_text(variant, f.variant)
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

    return finish


def prediction_parser(spec: RecordSpec, window_of: WindowFn) -> Callable[[Any], Row]:
    """A function from a parsed record to a ``predictions`` row (without ``model``).

    The hot path of ingestion, so the common case of a field (a text id, a float score)
    is checked inline; anything else goes through the checks :func:`label_parser` uses
    too, which also word the errors.
    """
    f = spec.fields
    features_text = _FeatureChecker(spec).text
    finish = _row_finisher(spec, window_of)
    id_key, ts_key, features_key, score_key = f.id, f.ts, f.features, f.score
    max_id = spec.max_id_length

    def parse(obj: Any) -> Row:
        if not isinstance(obj, dict):
            raise Rejected(Reason.NOT_AN_OBJECT, f"record is a {type(obj).__name__}")
        rid = obj.get(id_key)
        if type(rid) is not str or not 0 < len(rid) <= max_id or "\x00" in rid:
            rid = _check_id(rid, spec)
        ts = obj.get(ts_key)
        ts = _check_ts(ts, spec) if ts is None else parse_ts(ts)
        features = obj.get(features_key)
        features = features_text(_features_of(obj, spec) if features is None else features)
        get = obj.get
        return finish(
            rid,
            ts,
            features,
            get(f.prediction),
            get(f.probabilities),
            get(score_key),
            get(f.model_version),
            get(f.variant),
        )

    return parse


# What orjson reads as an integer; beyond that it reads a float, and so would the
# general path: such a line is left to it. (msgspec bounds cannot reach 2**64 - 1.)
_INT = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_SCALAR = str | bool | _INT | float | None
_FEATURE_TYPE: dict[FeatureType, Any] = {
    FeatureType.NUMERIC: _INT | float | None,
    FeatureType.BOOLEAN: bool | None,
    FeatureType.CATEGORICAL: str | bool | _INT | None,
}


def prediction_line_parser(
    spec: RecordSpec, window_of: WindowFn
) -> Callable[[bytes], Row | None] | None:
    """A function from one JSON line to a ``predictions`` row, or None for "not here".

    The fast path of :func:`prediction_parser` for JSON lines (40% less CPU a line than
    orjson and the general path, on bench/ingest.py's lines): msgspec decodes the line
    into a struct of the contract's fields and
    checks the features against the schema while decoding, and the features' JSON text is
    stored as logged rather than rebuilt. A line it returns None for (anything msgspec
    refuses: bad JSON, NaN, a feature outside the schema or of the wrong type, a huge
    integer, flat features...) goes to the general path, which decides and words the
    reason; a line it decodes gets the general path's checks and errors, in its order.
    Lines with fields beyond the contract's are left to the general path too.
    Returns None itself when it cannot apply: no schema, or two fields sharing a name.
    """
    f = spec.fields
    keys = {
        "id": f.id,
        "ts": f.ts,
        "features": f.features,
        "prediction": f.prediction,
        "score": f.score,
        "probabilities": f.probabilities,
        "model_version": f.model_version,
        "variant": f.variant,
    }
    if not spec.schema or len(set(keys.values())) < len(keys):
        return None
    record_type = msgspec.defstruct(
        "Record",
        [
            ("id", str | _INT | None, None),
            ("ts", str | _INT | float | None, None),
            ("features", msgspec.Raw, msgspec.Raw()),
            ("prediction", _SCALAR, None),
            ("score", _INT | float | None, None),
            ("probabilities", dict[str, _INT | float] | None, None),
            ("model_version", _SCALAR, None),
            ("variant", _SCALAR, None),
        ],
        rename=keys,
        # msgspec skips an unknown field without the checks orjson makes (an overflowing
        # number, the UTF-8 of its text): such lines are left to the general path
        forbid_unknown_fields=True,
        gc=False,
    )
    names = list(spec.schema)
    features_type = msgspec.defstruct(
        "Features",
        [(f"f{i}", _FEATURE_TYPE[spec.schema[name]], None) for i, name in enumerate(names)],
        rename={f"f{i}": name for i, name in enumerate(names)},
        forbid_unknown_fields=True,
        gc=False,
    )
    decode_record = msgspec.json.Decoder(record_type).decode
    check_features = msgspec.json.Decoder(features_type).decode
    finish = _row_finisher(spec, window_of)
    max_id = spec.max_id_length

    def parse_line(data: bytes) -> Row | None:
        try:
            record: Any = decode_record(data)
            features = record.features
            checked = check_features(features)
            text = str(features, "utf-8")
        except Exception:  # noqa: BLE001 - whatever msgspec refuses, the general path decides
            return None
        rid = record.id
        if type(rid) is not str or not 0 < len(rid) <= max_id or "\x00" in rid:
            rid = _check_id(rid, spec)
        ts = record.ts
        ts = _check_ts(ts, spec) if ts is None else parse_ts(ts)
        row = finish(
            rid,
            ts,
            text,
            record.prediction,
            record.probabilities,
            record.score,
            record.model_version,
            record.variant,
        )
        row[PARSED_FEATURES] = checked  # for the feature block (monitor.blocks), not stored
        return row

    return parse_line


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
