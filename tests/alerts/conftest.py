"""Puts ``fake_slack`` on the path (pytest uses importlib mode); fixtures: a fresh fake
Slack per test, and ``world``: one driftd's alerting against it (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from fake_slack import FakeSlack  # noqa: E402
from slack_world import CHANNEL, World  # noqa: E402

from alerts.incidents import Policy  # noqa: E402
from storage.store import Store  # noqa: E402


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    with FakeSlack(channels={CHANNEL}) as slack:
        yield World(store, slack, Policy(resolve_after=2, repeat_interval=timedelta(hours=24)))
