"""The canary proof of live migration (issue 26 part 3).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # pools: the last canary proof (poolmgr.plan.proof), a JSON document.
    op.add_column("pools", sa.Column("canary_proof", sa.Text))
