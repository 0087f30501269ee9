"""Columns and tables for the fleet-scale engine, pool ownership, compute
VMs, Nova sync and reflection, retention and TLS pins.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

# NOTE(frozen): the counter names of poolmgr.db.counters and the event
# types poolmgr.intake.parse.counter_label keeps, as of this revision; a
# migration must not change when the code does.
_SEP = "|"
_MAX_LABEL = 64
_KNOWN_EVENT_TYPES = frozenset(
    "aggregate.%s.%s" % (action, phase)
    for action in ("create", "delete", "addhost", "removehost",
                   "updatemetadata", "updateprop", "add_host", "remove_host",
                   "update_metadata", "update_prop", "cache_images")
    for phase in ("start", "end", "progress"))


def _ts():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade():
    # hosts: the compute VM (classic topology), whether poolmgr stopped it,
    # and the pinned certificate of the host's xapi.
    op.add_column("hosts", sa.Column("compute_vm_uuid", sa.String(36)))
    op.add_column("hosts", sa.Column("compute_vm_stopped_at", _ts()))
    op.add_column("hosts", sa.Column("sha256_fingerprint", sa.String(95)))

    # pools: pool-level backoff, what a pass left the pool waiting for,
    # the metadata last written into the aggregate; one pool, one aggregate.
    op.add_column("pools", sa.Column("attempts", sa.Integer, nullable=False,
                                     server_default="0"))
    op.add_column("pools", sa.Column("waiting", sa.Text))
    op.add_column("pools", sa.Column("reflected", sa.Text))
    # NOTE(sqlite): SQLite cannot ALTER a constraint in; batch mode copies
    # the table there (the demo, unit tests) and is a plain ALTER on MySQL.
    with op.batch_alter_table("pools") as batch:
        batch.create_unique_constraint("uniq_pools0pool_uuid", ["pool_uuid"])

    # operations: compute node downtime of a join; purge by age.
    op.add_column("operations", sa.Column("downtime_s", sa.Float))
    op.create_index("ix_operations_started_at", "operations",
                    ["started_at"])

    # aggregates: when Nova's API last listed the aggregate.
    op.add_column("aggregates", sa.Column("api_synced_at", _ts()))

    # Counters that a purge never reaches (Prometheus _total semantics).
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        **_ARGS)
    _seed_counters(counters)
    # Small named facts the daemon publishes (last Nova sync, ...).
    op.create_table(
        "service_status",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("updated_at", _ts(), nullable=False),
        **_ARGS)


def _counter(family, *labels):
    return _SEP.join([family] + [str(label)[:_MAX_LABEL] for label in labels])


def _seed_counters(counters):
    """Totals of the rows already logged, so /metrics starts where they are.

    Duplicates and skipped messages never became rows; they start at 0.
    """
    conn = op.get_bind()
    totals = {}

    def add(name, count):
        totals[name] = totals.get(name, 0) + count

    for outcome, event_type, count in conn.execute(sa.text(
            "SELECT outcome, event_type, COUNT(*) FROM notifications "
            "GROUP BY outcome, event_type")):
        if outcome == "rejected" and event_type not in _KNOWN_EVENT_TYPES:
            event_type = "other"
        add(_counter("notifications", outcome, event_type), count)
    for kind, status, code, count in conn.execute(sa.text(
            "SELECT kind, status, xapi_error_code, COUNT(*) FROM operations "
            "GROUP BY kind, status, xapi_error_code")):
        # Every journal row counted as started, a finished one also under
        # its status and xapi error code.
        add(_counter("operations", kind, "started", ""), count)
        if status != "started":
            add(_counter("operations", kind, status, code or ""), count)
    if totals:
        op.bulk_insert(counters, [{"name": name, "value": value}
                                  for name, value in sorted(totals.items())])
