"""window value runs written by ingestion: the pk range of the rows a run holds

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("window_values") as batch:
        batch.add_column(sa.Column("after_pk", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("upto_pk", sa.BigInteger(), nullable=True))
    # the runs of a range of rows, and a window's runs, found from the indexes alone (in
    # SQLite, a column stored after a payload is read through its overflow pages)
    op.create_index(
        "ix_window_values_model_upto", "window_values", ["model", "upto_pk", "after_pk"]
    )
    op.drop_index("ix_window_values_model_start", table_name="window_values")
    op.create_index(
        "ix_window_values_window", "window_values", ["model", "start", "name", "upto_pk"]
    )


def downgrade() -> None:
    # runs in row order (NaN where missing) would read as sorted runs of present values:
    # without them, finalize reads those windows' values from their rows once, and stores
    # them back; blocks not folded yet hold no numeric features (their runs did): without
    # them, their rows are folded from their JSON
    op.execute("DELETE FROM feature_blocks")
    op.execute("DELETE FROM window_values WHERE upto_pk IS NOT NULL")
    op.drop_index("ix_window_values_window", table_name="window_values")
    op.create_index("ix_window_values_model_start", "window_values", ["model", "start"])
    op.drop_index("ix_window_values_model_upto", table_name="window_values")
    with op.batch_alter_table("window_values") as batch:
        batch.drop_column("upto_pk")
        batch.drop_column("after_pk")
