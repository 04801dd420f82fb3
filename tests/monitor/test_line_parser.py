"""The typed fast path for JSON prediction lines decides every line as the general path does.

:func:`monitor.records.prediction_line_parser` may leave a line to the general path
(orjson, then :func:`monitor.records.prediction_parser`), but a line it decides must come
out the same: the same row (features compared as values, since the fast path keeps their
JSON text as logged), or the same quarantine reason and detail.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest

from monitor.decoding import _last_window_first, decode_json_line
from monitor.records import (
    FeatureType,
    Fields,
    RecordSpec,
    Rejected,
    prediction_line_parser,
    prediction_parser,
)
from monitor.windows import TimeWindows, parse_duration

SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
    "is_new": FeatureType.BOOLEAN,
}
SPEC = RecordSpec(schema=SCHEMA)
BASE: dict[str, Any] = {
    "id": "req-1",
    "ts": "2026-11-28T10:00:00.250Z",
    "model_version": "3",
    "variant": "champion",
    "features": {"amount": 129.5, "country": "DE", "is_new": False},
    "prediction": 1,
    "score": 0.83,
}
# JSON values at the edges of what either decoder reads, as text
VALUES = [
    "null", "true", "false", "0", "-0", "1", "-1", "0.5", "-0.0", "1.5e3", "1E-400", "1e400",
    "-1e400", "NaN", "Infinity", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
    "18446744073709551616", "123456789012345678901234567890", '""', '"x"', '"DE"',
    '"2026-11-28T10:00:00Z"', '"2026-11-28 10:00"', '"9999-12-31T23:59:59Z"', '"yesterday"',
    '"' + "x" * 201 + '"', '"a\\u0000b"', '"\\ud800"', '"\\ud83d\\ude00"', '"Z\\u00fcrich"',
    '"Zürich"', "[]", "[1]", "{}", '{"a":1}', '{"fraud":0.2,"ok":0.8}', '{"fraud":"high"}',
    '{"fraud":true}', "1795860000", "1795860000.5", "1e20", "[[[[[[[[[[1]]]]]]]]]]",
]  # fmt: skip


def window_of() -> Callable[[datetime], datetime | None]:
    return _last_window_first(TimeWindows(parse_duration("1h")))


def outcome(row: dict[str, Any]) -> tuple[str, Any]:
    """What is stored: the row's columns (keys starting with "_" are for ingestion
    itself, e.g. the fast path's decoded features), features as JSON values."""
    stored = {k: v for k, v in row.items() if not k.startswith("_")}
    return "row", {**stored, "features": orjson.loads(row["features"])}


def general(spec: RecordSpec, line: bytes) -> tuple[str, Any]:
    parse = prediction_parser(spec, window_of())
    try:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = decode_json_line(line)
        return outcome(parse(record))
    except Rejected as rej:
        return "rejected", (str(rej.reason), rej.detail)


def fast(spec: RecordSpec, line: bytes) -> tuple[str, Any] | None:
    parse_line = prediction_line_parser(spec, window_of())
    assert parse_line is not None
    try:
        row = parse_line(line)
    except Rejected as rej:
        return "rejected", (str(rej.reason), rej.detail)
    return None if row is None else outcome(row)


def with_field(name: str, value: str | None, base: dict[str, Any] = BASE) -> bytes:
    """The base record as JSON text with one top-level field set to raw JSON (None: left out)."""
    parts = [
        f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}" for k, v in base.items() if k != name
    ]
    if value is not None:
        parts.append(f"{json.dumps(name)}:{value}")
    return ("{" + ",".join(parts) + "}").encode("utf-8", "surrogatepass")


def with_feature(name: str, value: str | None) -> bytes:
    features = {k: json.dumps(v) for k, v in BASE["features"].items() if k != name}
    if value is not None:
        features[name] = value
    text = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in features.items()) + "}"
    return with_field("features", text)


def structured_lines() -> list[bytes]:
    fields = [*BASE, "probabilities", "extra"]
    lines = [with_field(f, v) for f in fields for v in [*VALUES, None]]
    lines += [with_feature(f, v) for f in [*SCHEMA, "unknown"] for v in [*VALUES, None]]
    lines += [
        with_field("features", '{"amount":1,"amount":2}'),  # the last one counts
        with_field("features", '{"amount":"x","amount":2}'),
        with_field("features", '{"amount":2,"amount":"x"}'),
        with_field("id", '"a"', {**BASE, "id": "b"}),
        with_field("extra", '"\xff"'.encode("latin-1").decode("utf-8", "surrogateescape")),
        b'{"id":"req-1","ts":"2026-11-28T10:00:00Z","features":{"amount":1},"prediction":1} x',
        b"\xef\xbb\xbf" + with_field("id", '"bom"'),
        b" " + with_field("id", '"spaces"') + b"  ",
        b'{ "id" : "ws" , "ts" : "2026-11-28T10:00:00Z" , "features" : { "amount" : 1.0 } , '
        b'"prediction" : 0 }',
        b"",
        b"[1,2]",
        b"null",
    ]
    return lines


def mutations(seed: int, n: int) -> list[bytes]:
    """Random byte edits of valid lines: most are malformed somewhere."""
    rng = random.Random(seed)
    bases = [
        with_field("id", '"m-1"'),
        with_field("probabilities", '{"fraud":0.25,"ok":0.75}'),
        with_feature("amount", "12"),
        with_field("ts", "1795860000.25"),
    ]
    alphabet = b'"{}[],:0123456789-+.eEnNtrufalsI\\ \t\x00\x7f\xc3\xa9\xff'
    out = []
    for _ in range(n):
        line = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(line))
            action = rng.random()
            if action < 0.4:
                line[at] = rng.choice(alphabet)
            elif action < 0.7:
                del line[at]
            else:
                line.insert(at, rng.choice(alphabet))
        out.append(bytes(line))
    return out


def assert_same(spec: RecordSpec, lines: list[bytes]) -> int:
    """Asserts every line the fast path decides; returns how many it decided."""
    decided = 0
    for line in lines:
        got = fast(spec, line)
        if got is not None:
            decided += 1
            assert got == general(spec, line), line
    return decided


def test_structured_edge_values_are_decided_as_the_general_path_does() -> None:
    lines = structured_lines()
    decided = assert_same(SPEC, lines)
    assert decided > 150  # of 623: the fast path is not simply leaving everything


def test_random_edits_of_valid_lines_are_decided_as_the_general_path_does() -> None:
    assert assert_same(SPEC, mutations(20261128, 20_000)) > 1_000  # 1,895 with this seed


def test_valid_lines_take_the_fast_path_and_keep_the_features_text_as_logged() -> None:
    line = b'{"id":"a","ts":"2026-11-28T10:00:00Z","features":{"amount": 1.5e3,"country":"DE"},'
    line += b'"prediction":1,"score":0.5}'
    parse_line = prediction_line_parser(SPEC, window_of())
    assert parse_line is not None
    row = parse_line(line)
    assert row is not None
    assert row["features"] == '{"amount": 1.5e3,"country":"DE"}'
    assert general(SPEC, line) == outcome(row)


def test_renamed_fields_are_read_by_the_fast_path() -> None:
    fields = Fields(id="request_id", ts="time", features="x", score="p")
    spec = RecordSpec(fields=fields, schema=SCHEMA)
    record = {"request_id": "r", "time": 1795860000, "x": {"amount": 2}, "prediction": 0, "p": 0.1}
    line = json.dumps(record).encode()
    parse_line = prediction_line_parser(spec, window_of())
    assert parse_line is not None
    row = parse_line(line)
    assert row is not None and (row["id"], row["score"]) == ("r", 0.1)
    assert general(spec, line) == outcome(row)


@pytest.mark.parametrize(
    "spec",
    [RecordSpec(), RecordSpec(fields=Fields(score="prediction"), schema=SCHEMA)],
    ids=["no schema", "two fields in one"],
)
def test_no_fast_path_where_it_cannot_apply(spec: RecordSpec) -> None:
    assert prediction_line_parser(spec, window_of()) is None
