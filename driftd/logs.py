"""Logging set-up for the CLI, with secrets redacted.

Libraries log what they send (slack-sdk logs request bodies at DEBUG, and the full
incoming-webhook URL, which is itself a secret). :func:`protect` registers secret values;
every record that passes the handlers has them replaced, in the message, its arguments
and its traceback text. :func:`redact` does the same for what the CLI prints of stored
data (a quarantined line can hold anything, a token pasted into a log included).
"""

from __future__ import annotations

import logging
import sys
import threading

REDACTED = "[redacted]"


class SecretFilter(logging.Filter):
    """Replaces registered secret values in records (a handler filter: sees them all)."""

    _secrets: set[str] = set()
    _lock = threading.Lock()

    @classmethod
    def add(cls, *values: str) -> None:
        with cls._lock:
            cls._secrets.update(v for v in values if v and len(v) >= 8)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def protect(*secrets: str) -> None:
    """Never let these values reach a log line."""
    SecretFilter.add(*secrets)


def redact(text: str) -> str:
    """``text`` with every value registered by :func:`protect` replaced."""
    return SecretFilter().redact(text)


FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S%z"


def setup_logging(level: str = "INFO") -> None:
    """One stderr handler on the root logger, secrets redacted; third-party chatter at
    WARNING unless ``level`` is DEBUG.

    Not ``logging.config.dictConfig``: it closes every handler that exists, other
    owners' included, and absl's (imported with TensorFlow) closes the stream it was
    given, which may be a stream its owner still uses (a test runner's capture, the
    stderr of an embedding program). Handlers taken off the root are left open.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
