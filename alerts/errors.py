"""Delivery errors of the alert sinks (see :mod:`storage.errors` for the hierarchy)."""

from __future__ import annotations

from storage.errors import DriftdError


class AlertDeliveryError(DriftdError):
    """An alert sink failed to deliver a message."""


class PermanentDeliveryError(AlertDeliveryError):
    """A delivery failure that retrying will not fix (bad token, unknown channel)."""
