"""Decoding one record: JSON lines (with the reasons a bad line is quarantined for),
CSV cells by feature type, and the window a record's time falls in."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import MAXYEAR, datetime
from typing import Any

import orjson

from monitor.records import FeatureType, Reason, Rejected, find_non_finite
from monitor.windows import RowWindows, TimeWindows, Windows

EXCERPT_BYTES = 200


def window_of(windows: Windows) -> Callable[[datetime], datetime | None]:
    """The parsers' window assignment: row-count windows are assigned when stored."""
    if isinstance(windows, RowWindows):
        return _assigned_when_stored
    return _last_window_first(windows)


def _assigned_when_stored(ts: datetime) -> None:
    # a window start may be moved 1 µs past the previous one: keep room for that
    if ts.year == MAXYEAR:
        raise Rejected(Reason.BAD_TS, f"no window for {ts.isoformat()}")
    return None


def _last_window_first(windows: TimeWindows) -> Callable[[datetime], datetime]:
    """``windows.start_of`` that first tries the window of the previous call.

    Log records come roughly in time order, so most fall in the window of the record
    before them; two comparisons cost less than a third of computing the window. A time
    whose window would end after year 9999 is a bad timestamp: no window row can hold it.
    """
    last: tuple[datetime, datetime] | None = None  # (start, end) of the previous window

    def start_of(ts: datetime) -> datetime:
        nonlocal last
        if last is not None and last[0] <= ts < last[1]:
            return last[0]
        start = windows.start_of(ts)
        try:
            last = (start, windows.end_of(start))
        except OverflowError:
            raise Rejected(Reason.BAD_TS, f"no window for {ts.isoformat()}") from None
        return start

    return start_of


def excerpt(data: bytes) -> str:
    # NUL is escaped: PostgreSQL text cannot hold it
    text = data[:EXCERPT_BYTES].decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00")


def decode_json_line(data: bytes) -> Any:
    """The JSON value of one line; raises :class:`Rejected` for bad bytes or syntax."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        refused = str(exc)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(Reason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}") from None
    try:
        # the stdlib parser accepts NaN/Infinity, so they are reported as non-finite values
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Rejected(Reason.BAD_JSON, str(exc)[:120]) from None
    where = find_non_finite(value)
    if where is not None:
        raise Rejected(Reason.NON_FINITE, f"{where} is not a finite number")
    # What else orjson refuses is no text either, such as a lone surrogate escape
    # ("\ud800"): storing it would fail the whole chunk, on every retry.
    raise Rejected(Reason.BAD_JSON, refused[:120])


def refuse_non_finite(record: dict[str, Any]) -> None:
    """Flat rows (CSV, Parquet) can hold NaN or infinity, which JSON lines cannot."""
    where = find_non_finite(record)
    if where is not None:
        raise Rejected(Reason.NON_FINITE, f"{where} is not a finite number")


def csv_value(text: str, kind: FeatureType | None) -> Any:
    if text == "":
        return None
    if kind is FeatureType.NUMERIC:
        try:
            return float(text)
        except ValueError:
            return text  # reported as a type error by validation
    if kind is FeatureType.BOOLEAN:
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        return text
    if kind is FeatureType.CATEGORICAL:
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text
