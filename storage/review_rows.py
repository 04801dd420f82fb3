"""The review queue's rows, free of SQLAlchemy like :mod:`storage.rows`: an item, an
item with its prediction, a stored prediction with its label, and what queueing needs of
a candidate. :mod:`storage.review` reads and writes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Candidate(Protocol):
    """What :meth:`ReviewRepository.enqueue` needs of a candidate (monitor.review's)."""

    @property
    def prediction_id(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def priority(self) -> float: ...
    @property
    def label(self) -> Any: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ReviewItem:
    pk: int
    model: str
    prediction_id: str
    window_start: datetime | None
    reason: str
    priority: float
    state: str
    label: Any  # the production label known when queued (or upgraded)
    new_label: Any  # the reviewed label (relabelled, confirmed)
    reviewer: str | None
    reviewed_at: datetime | None
    created_at: datetime
    why: dict[str, Any]  # the candidate's details: summary, priority parts, ...
    history: list[dict[str, Any]]  # queued, upgraded, each review


@dataclass(frozen=True)
class ItemView:
    """An item with the prediction it is about and the production label, as of now."""

    item: ReviewItem
    ts: datetime | None
    features: dict[str, Any]
    prediction: Any
    score: float | None
    probabilities: dict[str, float] | None
    production_label: Any  # None while no label has arrived


@dataclass(frozen=True)
class WindowRow:
    """A stored prediction with its label joined (None before it arrives)."""

    id: str
    ts: datetime
    features: dict[str, Any]
    prediction: Any
    score: float | None
    label: Any
    probabilities: dict[str, float] | None = None


__all__ = ["Candidate", "ItemView", "ReviewItem", "WindowRow"]
