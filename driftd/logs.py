"""Logging set-up for the CLI (``logging.config.dictConfig``)."""

from __future__ import annotations

import logging.config


def setup_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {
                    "format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                    "datefmt": "%Y-%m-%dT%H:%M:%S%z",
                }
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "plain",
                    "stream": "ext://sys.stderr",
                }
            },
            "loggers": {
                # third-party chatter stays at WARNING unless asked for
                "apscheduler": {"level": "WARNING" if level != "DEBUG" else "DEBUG"},
                "alembic": {"level": "WARNING"},
                "sqlalchemy": {"level": "WARNING"},
            },
            "root": {"handlers": ["stderr"], "level": level},
        }
    )
