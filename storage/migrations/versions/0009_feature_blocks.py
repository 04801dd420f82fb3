"""feature blocks: new predictions column by column, from ingestion to the fold;
reference profiles stored in binary; window value runs of one column

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feature_blocks",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("after_pk", sa.BigInteger(), nullable=False),
        sa.Column("upto_pk", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_feature_blocks"),
    )
    op.create_index("ix_feature_blocks_model_upto", "feature_blocks", ["model", "upto_pk"])
    with op.batch_alter_table("reference_profiles") as batch:
        batch.add_column(sa.Column("payload", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("window_values") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("window_values") as batch:
        batch.drop_column("name")
    with op.batch_alter_table("reference_profiles") as batch:
        batch.drop_column("payload")
    op.drop_index("ix_feature_blocks_model_upto", table_name="feature_blocks")
    op.drop_table("feature_blocks")
