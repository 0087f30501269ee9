"""Host maintenance: drains, undrains and rolling reboots (issue 26).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _ts():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade():
    op.create_table(
        "maintenance_operations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("aggregate_id", sa.Integer, nullable=False),
        sa.Column("running_aggregate_id", sa.Integer),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("hosts", sa.Text, nullable=False),
        sa.Column("current_host", sa.String(255)),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("finished_at", _ts()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.UniqueConstraint("running_aggregate_id",
                            name="uniq_maintenance_operations0running"),
        **_ARGS)
    op.create_index("ix_maintenance_operations_aggregate_id",
                    "maintenance_operations", ["aggregate_id", "id"])
    # pools: the running operation, read with the pool row by every pass.
    op.add_column("pools", sa.Column("maintenance_id", sa.Integer))


def downgrade():
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("maintenance_id")
    op.drop_table("maintenance_operations")
