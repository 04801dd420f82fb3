"""What every section of driftd's config shares: frozen, unknown keys refused, and
durations written as 15m, 1h or 1d."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from monitor.windows import parse_duration


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 15m, 1h or 1d, got {value!r}")
    return parse_duration(value)
