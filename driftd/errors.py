"""The shell's errors (see :mod:`storage.errors` for the whole hierarchy)."""

from __future__ import annotations

from storage.errors import DriftdError


class ConfigError(DriftdError):
    """A configuration file or value is invalid; the message names the key and value.
    The CLI exits 2 on it."""
