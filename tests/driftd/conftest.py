"""Shared by the CLI tests: every ``driftd`` command tightens the process umask (files
it writes are the owner's only), so each test gets the umask it started with back."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)
