"""Retraining's errors (see :mod:`storage.errors` for the hierarchy)."""

from __future__ import annotations

from storage.errors import DriftdError


class RetrainError(DriftdError):
    """Training, gating, registering, exporting or loading a model failed."""
