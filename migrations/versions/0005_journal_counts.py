"""The journal's steps are counted ``started`` when they finish; the steps
in flight are read from the journal, by an index on its status.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# NOTE(frozen): poolmgr.db.counters' names as of this revision.
_SEP = "|"
_MAX_LABEL = 64


def upgrade():
    op.create_index("ix_operations_status", "operations", ["status"])
    # A row still ``started`` was counted when it began; from now on it is
    # counted when it finishes (NOTE(counted-at-finish) in db.journal).
    _shift_started(-1)


def downgrade():
    _shift_started(+1)
    op.drop_index("ix_operations_status", table_name="operations")


def _shift_started(sign):
    conn = op.get_bind()
    for kind, count in conn.execute(sa.text(
            "SELECT kind, COUNT(*) FROM operations WHERE status = 'started' "
            "GROUP BY kind")).all():
        conn.execute(sa.text(
            "UPDATE counters SET value = value + :n WHERE name = :name"),
            {"n": sign * count, "name": _SEP.join(
                ["operations", str(kind)[:_MAX_LABEL], "started", ""])})
