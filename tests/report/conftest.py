"""Puts ``report_seed`` on the path (pytest uses importlib mode); the ``seeded`` fixture."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from report_seed import AS_OF, Seeded, write_workspace  # noqa: E402

from alerts.sinks import ConsoleSink  # noqa: E402
from driftd.app import App  # noqa: E402
from driftd.config import load  # noqa: E402


@pytest.fixture
def seeded(tmp_path: Path, db_url: str) -> Iterator[Seeded]:
    path = write_workspace(tmp_path, db_url)
    messages: list[str] = []
    now = [AS_OF]  # tests move the clock through this
    app = App(load(path), sink=ConsoleSink(write=messages.append), clock=lambda: now[0]).open()
    try:
        app.ingest()
        yield Seeded(app, path, tmp_path, messages, now)
    finally:
        app.close()
