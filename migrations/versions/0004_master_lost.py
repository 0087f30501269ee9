"""Columns for a dead master: what the engine saw and did, the promotion an
operator asked for, and xapi HA as last seen on the master.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("pools", sa.Column("failover", sa.Text))
    op.add_column("pools", sa.Column("promote_request", sa.Text))
    op.add_column("pools", sa.Column("ha_enabled", sa.Boolean))
