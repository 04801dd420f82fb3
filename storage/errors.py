"""The exceptions driftd raises.

Every error that driftd raises on purpose derives from :class:`DriftdError`, so a caller
can catch the whole family in one place. Third-party errors are translated at the
boundary that meets them (``raise StorageError(...) from exc``).

    DriftdError
     ├── ConfigError              a config file or value is invalid (names the key)
     ├── StorageError             the database refused or failed an operation
     │    ├── TransientStorageError   worth retrying (connection lost, lock timeout)
     │    └── InvalidOperationError   the stored state does not allow it (a rule of storage)
     ├── LeaseHeldError           another driftd holds this model's lease (storage.lease)
     ├── IngestError              a source cannot be read at all (not a bad record)
     ├── AlertDeliveryError       an alert sink failed to deliver
     │    └── PermanentDeliveryError  retrying will not help (bad token, no channel)
     └── RetrainError             training or evaluating a candidate failed

The hierarchy lives in ``storage`` because ``storage`` is the bottom layer that every
other package may import (see DESIGN.md); it imports nothing heavy.
"""

from __future__ import annotations


class DriftdError(Exception):
    """Base class of every error driftd raises on purpose."""


class ConfigError(DriftdError):
    """A configuration file or value is invalid."""


class StorageError(DriftdError):
    """The database refused or failed an operation."""


class TransientStorageError(StorageError):
    """A storage failure that may succeed when retried."""


class InvalidOperationError(StorageError):
    """An operation the stored state or storage's rules do not allow (e.g. a review
    into a state that takes no label)."""


class IngestError(DriftdError):
    """A source cannot be read at all (as opposed to one bad record)."""


class AlertDeliveryError(DriftdError):
    """An alert sink failed to deliver a message."""


class PermanentDeliveryError(AlertDeliveryError):
    """A delivery failure that retrying will not fix."""


class RetrainError(DriftdError):
    """Training or evaluating a candidate model failed."""
