"""model registry: artifact digests, the append-only alias log, training attempts

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("digest", sa.String(64)))
        batch.add_column(sa.Column("run_id", sa.String(100)))
        batch.add_column(sa.Column("details", sa.Text()))
    op.create_table(
        "alias_moves",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("move", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(50), nullable=False),
        sa.Column("from_version", sa.String(100)),
        sa.Column("to_version", sa.String(100)),
        sa.Column("moved_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("moved_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_alias_moves"),
    )
    op.create_index("ix_alias_moves_model", "alias_moves", ["model", "pk"])
    op.create_table(
        "trainings",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(50), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("data_end", TS),
        sa.Column("version", sa.String(100)),
        sa.Column("details", sa.Text()),
        sa.PrimaryKeyConstraint("pk", name="pk_trainings"),
    )
    op.create_index("ix_trainings_model_started", "trainings", ["model", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_trainings_model_started", table_name="trainings")
    op.drop_table("trainings")
    op.drop_index("ix_alias_moves_model", table_name="alias_moves")
    op.drop_table("alias_moves")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("details")
        batch.drop_column("run_id")
        batch.drop_column("digest")
