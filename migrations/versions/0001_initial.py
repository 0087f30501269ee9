"""Initial schema: aggregates, hosts, pools, members, journal, notifications.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _ts(nullable=True):
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade():
    op.create_table(
        "aggregates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("uuid", sa.String(36)),
        sa.Column("name", sa.String(255)),
        sa.Column("name_stamp", _ts()),
        sa.Column("hosts", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("host_stamps", sa.Text, nullable=False),
        sa.Column("meta_stamps", sa.Text, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("last_event_at", _ts()),
        sa.Column("last_cause", sa.String(64)),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        **_ARGS)
    op.create_table(
        "hosts",
        sa.Column("compute_host", sa.String(255), primary_key=True),
        sa.Column("xapi_url", sa.String(1024), nullable=False),
        sa.Column("xenserver_uuid", sa.String(36)),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        **_ARGS)
    op.create_table(
        "pools",
        sa.Column("aggregate_id", sa.Integer, primary_key=True,
                  autoincrement=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("master", sa.String(255)),
        sa.Column("pool_uuid", sa.String(36)),
        sa.Column("due_at", _ts()),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_expires_at", _ts()),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("live_migration_ready", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("sr_matrix", sa.Text),
        sa.Column("last_error_code", sa.String(255)),
        sa.Column("last_error", sa.Text),
        sa.Column("last_reconciled_at", _ts()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        **_ARGS)
    op.create_index("ix_pools_due", "pools", ["due_at"])
    op.create_table(
        "pool_members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("aggregate_id", sa.Integer,
                  sa.ForeignKey("pools.aggregate_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("xenserver_uuid", sa.String(36)),
        sa.Column("error_code", sa.String(255)),
        sa.Column("error_params", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _ts()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.UniqueConstraint("aggregate_id", "host",
                            name="uniq_pool_members0aggregate_id0host"),
        **_ARGS)
    op.create_table(
        "operations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("aggregate_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("step", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("xapi_error_code", sa.String(255)),
        sa.Column("xapi_error_params", sa.Text),
        sa.Column("cause", sa.String(255)),
        sa.Column("owner", sa.String(255)),
        sa.Column("generation", sa.Integer),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts()),
        **_ARGS)
    op.create_index("ix_operations_aggregate_id", "operations",
                    ["aggregate_id", "id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(255)),
        sa.Column("publisher_id", sa.String(255)),
        sa.Column("aggregate_id", sa.Integer),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("event_time", _ts()),
        sa.Column("received_at", _ts(), nullable=False),
        sa.UniqueConstraint("message_id",
                            name="uniq_notifications0message_id"),
        **_ARGS)
    op.create_index("ix_notifications_received_at", "notifications",
                    ["received_at"])
