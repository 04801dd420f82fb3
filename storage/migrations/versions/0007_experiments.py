"""champion/challenger: the challenger's shadow answers, and each challenger's phase

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "shadow_predictions",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("prediction", sa.Text()),
        sa.Column("score", sa.Float()),
        sa.Column("probabilities", sa.Text()),
        sa.Column("scored_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_shadow_predictions"),
        sa.UniqueConstraint(
            "model", "version", "id", name="uq_shadow_predictions_model_version_id"
        ),
    )
    op.create_table(
        "experiments",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("challenger", sa.String(100), nullable=False),
        sa.Column("champion", sa.String(100)),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("phase_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("reason", sa.Text()),
        sa.Column("details", sa.Text()),
        sa.PrimaryKeyConstraint("pk", name="pk_experiments"),
        sa.UniqueConstraint("model", "challenger", name="uq_experiments_model_challenger"),
    )
    op.create_index("ix_experiments_model_phase", "experiments", ["model", "phase"])


def downgrade() -> None:
    op.drop_index("ix_experiments_model_phase", table_name="experiments")
    op.drop_table("experiments")
    op.drop_table("shadow_predictions")
