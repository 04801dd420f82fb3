"""Store contract: error translation, and passwords kept out of messages and reprs."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, select

from storage import schema
from storage.errors import DriftdError, StorageError, TransientStorageError
from storage.store import Store, redact_url

SECRET = "s3cret"
UNREACHABLE = f"postgresql://u:{SECRET}@127.0.0.1:1/x"  # nothing listens on port 1


def test_the_constructor_does_no_io() -> None:
    store = Store(UNREACHABLE)  # would raise if it connected
    store.dispose()


@pytest.mark.parametrize(
    "operation",
    [Store.ping, Store.migrate, Store.current_revision],
    ids=["ping", "migrate", "current_revision"],
)
def test_an_unreachable_server_is_a_transient_error_without_the_password(
    operation: Callable[[Store], object],
) -> None:
    store = Store(UNREACHABLE)
    with pytest.raises(TransientStorageError) as info:
        operation(store)
    assert SECRET not in str(info.value)
    # what the daemon logs: the whole chain, with tracebacks
    assert SECRET not in "".join(traceback.format_exception(info.value))
    assert "127.0.0.1" in str(info.value)  # but it names the server
    store.dispose()


def test_an_unreachable_server_fails_a_transaction_as_transient() -> None:
    store = Store(UNREACHABLE)
    with pytest.raises(TransientStorageError), store.transaction("writing things"):
        pass
    store.dispose()


def test_storage_errors_are_driftd_errors() -> None:
    assert issubclass(TransientStorageError, StorageError)
    assert issubclass(StorageError, DriftdError)


def test_a_refused_statement_is_a_storage_error_and_rolls_back(store: Store) -> None:
    t = schema.labels
    row = {"model": "m", "id": "req-1", "label": "0", "ts": datetime.now(UTC)}
    with store.transaction() as conn:
        conn.execute(t.insert().values(row))

    with pytest.raises(StorageError, match="adding labels") as info:
        with store.transaction("adding labels") as conn:
            conn.execute(t.insert().values(dict(row, id="req-2")))
            conn.execute(t.insert().values(row))  # (model, id) is unique

    assert not isinstance(info.value, TransientStorageError)  # retrying will not help
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t)).scalar_one() == 1


def test_an_unknown_dialect_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError) as info:
        Store(f"nosuchdb://u:{SECRET}@host/db").ping()
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql//u:{SECRET}@host/db",
        f"postgresql://u:{SECRET}@host:port/db",
    ],
    ids=["no-colon", "bad-port"],
)
def test_a_malformed_url_is_a_storage_error_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as info:
        Store(url).ping()
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@db.internal:5432/driftd",
        f"postgresql+psycopg://u:{SECRET}@db.internal/driftd?sslmode=require",
        "postgresql://u:p%40ss%3Aw0rd@db.internal/driftd",  # an encoded "@" and ":"
        f"postgresql//u:{SECRET}@db.internal/driftd",  # malformed
        f"postgresql://u@db.internal/driftd?password={SECRET}",
    ],
    ids=["plain", "driver-and-query", "encoded", "malformed", "query-password"],
)
def test_redact_url_hides_the_password(url: str) -> None:
    redacted = redact_url(url)
    assert SECRET not in redacted
    assert "p%40ss" not in redacted and "w0rd" not in redacted
    assert "db.internal" in redacted  # still says which database


def test_redact_url_keeps_a_url_without_password() -> None:
    assert (
        redact_url("sqlite:////var/lib/driftd/driftd.db") == "sqlite:////var/lib/driftd/driftd.db"
    )


def test_repr_hides_the_password() -> None:
    assert SECRET not in repr(Store(UNREACHABLE))
    assert "127.0.0.1" in repr(Store(UNREACHABLE))
    engine = create_engine(f"postgresql+psycopg://u:{SECRET}@127.0.0.1:1/x")
    try:
        assert SECRET not in repr(Store(engine))
        assert SECRET not in str(Store(engine))
    finally:
        engine.dispose()


def test_a_store_answers_ping_on_both_backends(store: Store) -> None:
    store.ping()
    assert store.dialect in {"sqlite", "postgresql"}


def test_a_profile_is_read_back_as_stored_binary_or_json(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binary profile larger than one read step of SQLite's blob API comes back byte for
    byte; a profile stored as JSON before 0009 (no payload) comes back as its text."""
    import os

    from storage import store as store_module
    from storage.statistics import StatisticsRepository

    monkeypatch.setattr(store_module, "BLOB_STEP", 1000)  # several steps and a partial one
    payload = os.urandom(4321)
    repository = StatisticsRepository(store)
    repository.save_profile("m", "1", payload)
    stored = repository.profile("m", "1")
    assert isinstance(stored, memoryview) and bytes(stored) == payload
    t = schema.reference_profiles
    with store.transaction() as conn:
        conn.execute(
            t.insert().values(
                model="m", model_version="0", profile='{"a": 1}', created_at=datetime.now(UTC)
            )
        )
    assert repository.profile("m", "0") == '{"a": 1}'
    assert repository.profile("m", "2") is None
