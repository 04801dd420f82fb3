"""The exceptions driftd raises, and where each layer defines its own.

Every error that driftd raises on purpose derives from :class:`DriftdError`, defined here
because ``storage`` is the bottom layer every package may import. Each layer defines its
own errors beside its code, and translates third-party errors where it meets them
(``raise StorageError(...) from exc``)::

    DriftdError                      storage.errors
     ├── StorageError                the database refused or failed an operation
     │    ├── TransientStorageError  worth retrying (connection lost, lock timeout):
     │    │                          the job runner retries it with backoff
     │    └── InvalidOperationError  the stored state does not allow it (a rule of storage)
     ├── LeaseHeldError              another driftd holds this model's lease (storage.lease)
     ├── ConfigError                 a config file or value is invalid (driftd.errors)
     ├── AlertDeliveryError          an alert sink failed to deliver (alerts.errors)
     │    ├── PermanentDeliveryError retrying will not help (bad token, no channel)
     │    └── HistoryCheckError      the in-doubt duplicate check failed (alerts.sinks)
     └── RetrainError                training, gating, registering or loading a model
                                     failed (retrain.errors)
"""

from __future__ import annotations


class DriftdError(Exception):
    """Base class of every error driftd raises on purpose."""


class StorageError(DriftdError):
    """The database refused or failed an operation."""


class TransientStorageError(StorageError):
    """A storage failure that may succeed when retried."""


class InvalidOperationError(StorageError):
    """An operation the stored state or storage's rules do not allow (e.g. a review
    into a state that takes no label)."""
