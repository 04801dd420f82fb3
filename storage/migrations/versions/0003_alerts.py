"""alerts: incidents, outbox and silences as the alert pipeline uses them

The tables of revision 0001 were placeholders that nothing wrote to; they are replaced.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_table("alert_outbox")
    op.drop_table("silences")
    op.drop_table("incidents")
    op.create_table(
        "incidents",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("last_window", TS, nullable=True),
        sa.Column("clear_streak", sa.Integer(), nullable=False),
        sa.Column("last_notified_at", TS, nullable=True),
        sa.Column("notified_severity", sa.String(length=20), nullable=True),
        sa.Column("suppressed", sa.String(length=200), nullable=True),
        sa.Column("root_pk", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_incidents")),
    )
    op.create_index(
        "uq_incidents_open_key",
        "incidents",
        ["model", "rule", "scope"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )
    op.create_index("ix_incidents_model_state", "incidents", ["model", "state"])
    op.create_table(
        "alert_outbox",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("root_pk", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("delivery_ref", sa.String(length=100), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_alert_outbox")),
    )
    op.create_index(
        "ix_alert_outbox_status", "alert_outbox", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "silences",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_silences")),
    )


def downgrade() -> None:
    raise NotImplementedError("0003 replaced placeholder tables; restore a backup instead")
