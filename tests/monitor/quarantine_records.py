"""Records of the log contract as the quarantine tests write them: JSON objects with
changes, hand-written features, CSV rows and Parquet tables."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

TS = "2026-11-28T10:00:00Z"


def record(rid: str = "j-bad", **changes: Any) -> dict[str, Any]:
    """A valid record with ``changes`` applied (a value of ``...`` removes the field)."""
    base: dict[str, Any] = {
        "id": rid,
        "ts": TS,
        "features": {"amount": 12.5, "country": "DE", "is_new": False},
        "prediction": 1,
        "score": 0.75,
    }
    for key, value in changes.items():
        if key in ("amount", "country", "is_new", "extra"):
            base["features"][key] = value
        elif value is ...:
            del base[key]
        else:
            base[key] = value
    return base


def raw(rid: str, fragment: str) -> bytes:
    """A record whose features object is written by hand (for NaN and other non-JSON)."""
    return (
        f'{{"id":"{rid}","ts":"{TS}","features":{{{fragment}}},"prediction":1,"score":0.5}}'
    ).encode("utf-8", "surrogateescape")


CSV_HEADER = b"id,ts,amount,is_new,prediction,score,country"


def csv_row(rid: str, **fields: Any) -> str:
    values = {"ts": TS, "amount": 1.5, "is_new": "false", "prediction": 1, "score": 0.5}
    values.update(fields)
    country = fields.get("country", "DE")
    return ",".join(
        str(v)
        for v in (
            rid,
            *(values[k] for k in ("ts", "amount", "is_new", "prediction", "score")),
            country,
        )
    )


def parquet_table(rows: list[dict[str, Any]], amount_type: pa.DataType) -> pa.Table:
    columns = ["id", "ts", "amount", "country", "is_new", "prediction", "score"]
    types = [
        pa.string(),
        pa.string(),
        amount_type,
        pa.string(),
        pa.bool_(),
        pa.int64(),
        pa.float64(),
    ]
    return pa.table(
        {c: pa.array([r.get(c) for r in rows], type=t) for c, t in zip(columns, types, strict=True)}
    )
