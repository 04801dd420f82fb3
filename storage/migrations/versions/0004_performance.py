"""performance: realized and estimated performance per window; the error stream

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "window_performance",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("realized", sa.Text(), nullable=True),
        sa.Column("estimated", sa.Text(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("model", "window_start", name=op.f("pk_window_performance")),
    )
    op.create_table(
        "error_streams",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("label_cursor", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.Text(), nullable=False),
        sa.Column("detectors", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_error_streams")),
    )


def downgrade() -> None:
    op.drop_table("error_streams")
    op.drop_table("window_performance")
