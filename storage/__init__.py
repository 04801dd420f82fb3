"""Persistence for driftd: tables, transactions and migrations (SQLAlchemy 2).

``storage`` imports none of driftd's other packages. Importing this package is cheap:
SQLAlchemy is loaded only when :mod:`storage.store` or :mod:`storage.schema` is.
"""

from storage.errors import (
    DriftdError,
    InvalidOperationError,
    StorageError,
    TransientStorageError,
)

__all__ = ["DriftdError", "InvalidOperationError", "StorageError", "TransientStorageError"]
