"""window values: each window's numeric values, sorted per column, for exact scores

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "window_values",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("start", TS, nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_window_values"),
    )
    op.create_index("ix_window_values_model_start", "window_values", ["model", "start"])


def downgrade() -> None:
    op.drop_index("ix_window_values_model_start", table_name="window_values")
    op.drop_table("window_values")
