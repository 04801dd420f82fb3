"""Table definitions for the whole monitoring loop (SQLAlchemy Core).

The tables are designed for every stage of the loop, not only ingestion:

- ``predictions``, ``labels``: what the model served and what really happened, unique
  per (model, id); features are stored as a JSON object in text form.
- ``checkpoints``: how far each source file has been read, committed in the same
  transaction as the rows it covers (exactly-once ingestion).
- ``quarantine``: records that could not be ingested, with their reason and position.
- ``cursors``: how far a consumer of stored rows (the statistics job) has read.
- ``windows``: one row per (model, window start): row counts and the mergeable partial
  statistics state of the window, plus its finalized results.
- ``feature_blocks``: new predictions column by column, written with them by ingestion
  and deleted by the statistics job's fold (monitor.blocks).
- ``window_values``: each window's numeric values, runs per column, for exact scores of
  grown windows: written by ingestion with the blocks (or by the fold), merged at
  finalize (monitor.window_values).
- ``reference_profiles``: the fitted reference profile per model version (msgpack).
- ``model_versions``, ``model_aliases``: driftd's record of the MLflow registry's
  versions (with their artifact digest) and aliases (champion, challenger, previous).
- ``alias_moves``: the append-only log of every alias move (who, when, from, to, why).
- ``trainings``: one row per training attempt (trigger, outcome, data cut-off).
- ``shadow_predictions``: the challenger's answers on rows the champion served.
- ``experiments``: each challenger's way to production: shadow, A/B test, bake period.
- ``incidents``, ``alert_outbox``, ``silences``: alert state and the delivery outbox.
- ``review_items``: the human review queue.
- ``detections``: concept-drift detector firings.
- ``job_runs``: one row per scheduled job run, so a restart finds abandoned runs.

Timestamps are timezone-aware UTC (``DateTime(timezone=True)``); SQLite stores them
naive, :mod:`storage.store` converts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored
    as naive UTC and given ``tzinfo=UTC`` back when read. Naive input is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: driftd stores aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


TS = UTCDateTime()
# SQLite and PostgreSQL both accept BIGINT autoincrement primary keys this way.
PK = BigInteger().with_variant(Integer(), "sqlite")

predictions = Table(
    "predictions",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("id", String(200), nullable=False),
    Column("ts", TS, nullable=False),
    Column("window_start", TS, nullable=False),
    Column("model_version", String(100)),
    Column("variant", String(100)),
    Column("features", Text, nullable=False),  # JSON object
    Column("prediction", Text),  # JSON value as served
    Column("score", Float),
    Column("probabilities", Text),  # JSON object {class: p} for multiclass
    UniqueConstraint("model", "id", name="uq_predictions_model_id"),
)
Index("ix_predictions_model_window", predictions.c.model, predictions.c.window_start)

labels = Table(
    "labels",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("id", String(200), nullable=False),
    Column("label", Text, nullable=False),  # JSON value
    Column("ts", TS, nullable=False),
    UniqueConstraint("model", "id", name="uq_labels_model_id"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("source", String(200), primary_key=True),
    Column("file_key", String(200), primary_key=True),  # device:inode
    Column("path", Text, nullable=False),
    Column("head", String(64)),  # fingerprint of the first bytes (inode reuse)
    Column("position", BigInteger, nullable=False),  # byte offset, or row group
    Column("line", BigInteger, nullable=False),  # records/lines consumed so far
    Column("rows", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("quarantined", BigInteger, nullable=False),
    Column("updated_at", TS, nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("line", BigInteger),
    Column("byte_offset", BigInteger),
    Column("reason", String(50), nullable=False),
    Column("detail", Text),
    Column("excerpt", Text),
    Column("created_at", TS, nullable=False),
)
Index("ix_quarantine_model_reason", quarantine.c.model, quarantine.c.reason)

windows = Table(
    "windows",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("start", TS, primary_key=True),
    Column("end", TS, nullable=False),
    Column("predictions", BigInteger, nullable=False),
    # records of this window whose id was already stored (time windows only)
    Column("duplicates", BigInteger, nullable=False, server_default="0"),
    Column("state", Text),  # JSON: mergeable partial aggregates
    Column("results", Text),  # JSON: finalized statistics
    Column("updated_at", TS, nullable=False),
    Column("finalized_at", TS),
)

# A window's numeric values, a run per column, so that finalizing a grown window scores
# it exactly from these instead of decoding its stored rows again (monitor.window_values).
# Ingestion writes a run of each numeric feature with each feature block (after_pk and
# upto_pk set, the block's: its rows' values in row order, NaN where missing), which the
# fold reads with the block and leaves in place; the fold writes the present values,
# sorted, of rows it folded from their JSON, and finalize merges many runs into one
# (after_pk and upto_pk NULL)
window_values = Table(
    "window_values",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("start", TS, nullable=False),
    Column("name", String(200)),  # the run's column (None: every column, before 0009)
    Column("rows", BigInteger, nullable=False),  # values in the run, all columns
    Column("payload", LargeBinary, nullable=False),  # msgpack: column -> float64 bytes
    Column("after_pk", BigInteger),  # written by ingestion: its rows' pk range (0010)
    Column("upto_pk", BigInteger),
)
# finalize lists a window's runs by column and upto_pk from the index alone: in SQLite,
# a column stored after the payload is read by walking the payload's overflow pages
Index(
    "ix_window_values_window",
    window_values.c.model,
    window_values.c.start,
    window_values.c.name,
    window_values.c.upto_pk,
)
Index(
    "ix_window_values_model_upto",
    window_values.c.model,
    window_values.c.upto_pk,
    window_values.c.after_pk,
)

# columnar blocks of new predictions (monitor.blocks): written by ingestion with the rows,
# folded by the statistics job instead of the rows' JSON and deleted with the cursor
# advance; a block holds the model's rows with after_pk < pk <= upto_pk of one window
feature_blocks = Table(
    "feature_blocks",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("window_start", TS, nullable=False),
    Column("after_pk", BigInteger, nullable=False),
    Column("upto_pk", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # monitor.blocks.BlockEncoder
)
Index("ix_feature_blocks_model_upto", feature_blocks.c.model, feature_blocks.c.upto_pk)

cursors = Table(
    "cursors",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("name", String(100), primary_key=True),  # e.g. "statistics"
    Column("position", BigInteger, nullable=False),  # last predictions.pk consumed
    Column("updated_at", TS, nullable=False),
)

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("profile", Text, nullable=False),  # JSON (before 0009; now "")
    Column("payload", LargeBinary),  # msgpack (monitor.drift.profile.profile_to_binary)
    Column("created_at", TS, nullable=False),
    UniqueConstraint("model", "model_version", name="uq_reference_profiles_model_version"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("version", String(100), primary_key=True),
    Column("status", String(30), nullable=False),  # candidate, champion, archived, rejected
    Column("uri", Text),
    Column("framework", String(50)),
    Column("parent_version", String(100)),
    Column("metrics", Text),  # JSON
    Column("params", Text),  # JSON
    Column("created_at", TS, nullable=False),
    Column("digest", String(64)),  # SHA-256 of the artifact, checked when it is loaded
    Column("run_id", String(100)),  # the MLflow run that produced it
    Column("details", Text),  # JSON: gates, trigger, training-set window and rows
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("alias", String(50), primary_key=True),  # champion, challenger, previous
    Column("version", String(100), nullable=False),
    Column("updated_at", TS, nullable=False),
)

# append-only: every alias move, with who moved it and why (one decision = one ``move``)
alias_moves = Table(
    "alias_moves",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("move", String(32), nullable=False),  # groups the rows of one decision
    Column("alias", String(50), nullable=False),
    Column("from_version", String(100)),  # None: the alias was not set
    Column("to_version", String(100)),  # None: the alias was removed
    Column("moved_by", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("moved_at", TS, nullable=False),
)
Index("ix_alias_moves_model", alias_moves.c.model, alias_moves.c.pk)

# one row per training attempt: cooldown, lineage and what triggered it
trainings = Table(
    "trainings",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("trigger", String(50), nullable=False),  # drift, realized, ..., manual, import
    Column("reason", Text, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("outcome", String(20), nullable=False),  # running, registered, rejected, failed
    Column("data_end", TS),  # the newest production row the training set may hold
    Column("version", String(100)),  # the registered version, when there is one
    Column("details", Text),  # JSON
)
Index("ix_trainings_model_started", trainings.c.model, trainings.c.started_at)

# the challenger's answers on rows the champion served (shadow scoring)
shadow_predictions = Table(
    "shadow_predictions",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("version", String(100), nullable=False),  # the challenger's registry version
    Column("id", String(200), nullable=False),  # predictions.id of the row it scored
    Column("prediction", Text),  # JSON value, as the challenger would have served it
    Column("score", Float),  # positive-class probability
    Column("probabilities", Text),  # JSON object {class: p} for multiclass
    Column("scored_at", TS, nullable=False),
    UniqueConstraint("model", "version", "id", name="uq_shadow_predictions_model_version_id"),
)

# one row per challenger: where it is on its way to production (shadow, A/B, bake)
experiments = Table(
    "experiments",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("challenger", String(100), nullable=False),  # the version on trial
    Column("champion", String(100)),  # the champion it was measured against
    Column("phase", String(20), nullable=False),  # see storage.experiment_state.PHASES
    Column("started_at", TS, nullable=False),  # the challenger alias was set
    Column("phase_at", TS, nullable=False),  # the current phase began
    Column("finished_at", TS),  # set with a final phase
    Column("reason", Text),  # why it is in this phase, one line
    Column("details", Text),  # JSON: shadow verdict, latest A/B decision, bake readings
    UniqueConstraint("model", "challenger", name="uq_experiments_model_challenger"),
)
Index("ix_experiments_model_phase", experiments.c.model, experiments.c.phase)

incidents = Table(
    "incidents",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("state", String(20), nullable=False),  # open, resolved
    Column("severity", String(20), nullable=False),
    Column("summary", Text, nullable=False),  # one line: what fired, latest
    Column("opened_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("last_window", TS),  # the latest window it fired in (window rules)
    Column("clear_streak", Integer, nullable=False, default=0),
    Column("last_notified_at", TS),
    Column("notified_severity", String(20)),
    Column("suppressed", String(200)),  # why it is not sent: silenced by N, inhibited by R
    Column("root_pk", BigInteger),  # the outbox message that first announced it
    Column("resolved_at", TS),
    Column("details", Text),  # JSON: value, threshold, method, report, ...
)
# one open incident per key
Index(
    "uq_incidents_open_key",
    incidents.c.model,
    incidents.c.rule,
    incidents.c.scope,
    unique=True,
    sqlite_where=incidents.c.state == "open",
    postgresql_where=incidents.c.state == "open",
)
Index("ix_incidents_model_state", incidents.c.model, incidents.c.state)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # notify, update, test
    Column("root_pk", BigInteger),  # update: the message whose thread it goes to
    Column("payload", Text, nullable=False),  # JSON: the alert, rendered by the sink
    Column("status", String(20), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS),
    Column("channel", String(100)),  # where it was delivered (Slack channel id)
    Column("delivery_ref", String(100)),  # Slack message ts
    Column("last_error", Text),
)
Index("ix_alert_outbox_status", alert_outbox.c.status, alert_outbox.c.next_attempt_at)

silences = Table(
    "silences",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),  # "*" for every model
    Column("rule", String(100), nullable=False),  # shell-style patterns
    Column("scope", String(200), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_by", String(100)),
    Column("created_at", TS, nullable=False),
)

review_items = Table(
    "review_items",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("prediction_id", String(200), nullable=False),
    Column("window_start", TS),
    Column("reason", String(50), nullable=False),
    Column("priority", Float, nullable=False),
    Column("state", String(20), nullable=False),  # pending, confirmed, relabelled, discarded
    Column("label", Text),  # label known when queued (JSON)
    Column("new_label", Text),  # reviewer's label (JSON)
    Column("reviewer", String(100)),
    Column("reviewed_at", TS),
    Column("created_at", TS, nullable=False),
    Column("details", Text),  # JSON
    UniqueConstraint("model", "prediction_id", name="uq_review_items_model_prediction"),
)

detections = Table(
    "detections",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("detector", String(50), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("ts", TS, nullable=False),
    Column("details", Text),  # JSON
    Column("created_at", TS, nullable=False),
)

window_performance = Table(
    "window_performance",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("window_start", TS, primary_key=True),
    Column("predictions", BigInteger, nullable=False),
    Column("labelled", BigInteger, nullable=False),
    Column("state", String(20), nullable=False),  # pending, incomplete, complete
    Column("realized", Text),  # JSON: metrics with intervals, against the reference
    Column("estimated", Text),  # JSON: label-free estimates with bounds
    Column("updated_at", TS, nullable=False),
)

error_streams = Table(
    "error_streams",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("label_cursor", BigInteger, nullable=False),  # last labels.pk consumed
    Column("position", BigInteger, nullable=False),  # errors fed to the detectors so far
    Column("pending", Text, nullable=False),  # JSON: label pks waiting for their prediction
    Column("detectors", Text, nullable=False),  # JSON: each detector's state
    Column("updated_at", TS, nullable=False),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("job", String(100), nullable=False),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("outcome", String(20), nullable=False),  # running, ok, failed, abandoned, skipped
    Column("error", Text),
    Column("summary", Text),  # JSON
    Column("host", String(200)),
    Column("pid", Integer),
)
Index("ix_job_runs_job_started", job_runs.c.job, job_runs.c.started_at)

__all__ = [
    "alert_outbox",
    "alias_moves",
    "checkpoints",
    "cursors",
    "detections",
    "error_streams",
    "feature_blocks",
    "incidents",
    "job_runs",
    "labels",
    "metadata",
    "model_aliases",
    "model_versions",
    "predictions",
    "quarantine",
    "reference_profiles",
    "review_items",
    "silences",
    "trainings",
    "window_performance",
    "windows",
]
