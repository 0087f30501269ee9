"""SQLAlchemy models: the tables poolmgr keeps in MySQL.

Desired state (``aggregates``) is written by the intake; observed and
operational state (``pools``, ``pool_members``, ``operations``) by the
reconciler; ``hosts`` by operators through poolmgr-manage.
"""

import json

from oslo_db.sqlalchemy import models
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import mysql

TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


class JSONEncoded(sa.types.TypeDecorator):
    """A JSON document in a TEXT column (portable to SQLite for the demo)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value, sort_keys=True)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


# NOTE(precision): ordering of notifications relies on microsecond timestamps;
# MySQL's plain DATETIME would drop them.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


class Base(orm.DeclarativeBase, models.ModelBase):
    pass


class TimestampMixin:
    created_at = sa.Column(Timestamp, nullable=False)
    updated_at = sa.Column(Timestamp, nullable=False)


class Aggregate(Base, TimestampMixin):
    """Nova's aggregate as the notifications describe it (desired state).

    ``host_stamps`` and ``meta_stamps`` hold, per host and per metadata key,
    the newest timestamp seen and whether it is present (a tombstone when
    not), so that any order of delivery converges to the same state.
    """

    __tablename__ = "aggregates"
    __table_args__ = TABLE_ARGS

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
    uuid = sa.Column(sa.String(36))
    name = sa.Column(sa.String(255))
    name_stamp = sa.Column(Timestamp)
    hosts = sa.Column(JSONEncoded, nullable=False)
    metadata_ = sa.Column("metadata", JSONEncoded, nullable=False)
    host_stamps = sa.Column(JSONEncoded, nullable=False)
    meta_stamps = sa.Column(JSONEncoded, nullable=False)
    deleted = sa.Column(sa.Boolean, nullable=False, default=False)
    last_event_at = sa.Column(Timestamp)
    last_cause = sa.Column(sa.String(64))
    # When Nova's API last listed this aggregate (desired-state sync).
    api_synced_at = sa.Column(Timestamp)


class Host(Base, TimestampMixin):
    """Inventory: a Nova compute host and the xapi that runs it."""

    __tablename__ = "hosts"
    __table_args__ = TABLE_ARGS

    compute_host = sa.Column(sa.String(255), primary_key=True)
    xapi_url = sa.Column(sa.String(1024), nullable=False)
    xenserver_uuid = sa.Column(sa.String(36))
    # The VM nova-compute runs in on this host (classic topology); None in
    # independent-compute mode.
    compute_vm_uuid = sa.Column(sa.String(36))
    # Set while the compute VM is down because poolmgr shut it down; only
    # such a VM is started again by poolmgr.
    compute_vm_stopped_at = sa.Column(Timestamp)
    # The pinned SHA-256 fingerprint of the host's xapi certificate.
    sha256_fingerprint = sa.Column(sa.String(95))


class Pool(Base, TimestampMixin):
    """The operational state of one aggregate's XenServer pool."""

    __tablename__ = "pools"
    __table_args__ = (
        sa.Index("ix_pools_due", "due_at"),
        # NOTE(ownership): one xapi pool belongs to one aggregate.
        sa.UniqueConstraint("pool_uuid", name="uniq_pools0pool_uuid"),
        TABLE_ARGS,
    )

    aggregate_id = sa.Column(sa.Integer, primary_key=True,
                             autoincrement=False)
    state = sa.Column(sa.String(16), nullable=False, default="created")
    master = sa.Column(sa.String(255))
    pool_uuid = sa.Column(sa.String(36))
    # Reconcile scheduling: a pool is due when due_at <= now.
    due_at = sa.Column(Timestamp)
    # Lease and fencing token (see reconciler): only the owner of an
    # unexpired lease with the current generation may mutate the pool.
    lease_owner = sa.Column(sa.String(255))
    lease_expires_at = sa.Column(Timestamp)
    generation = sa.Column(sa.Integer, nullable=False, default=0)
    live_migration_ready = sa.Column(sa.Boolean, nullable=False,
                                     default=False)
    reasons = sa.Column(JSONEncoded, nullable=False)
    sr_matrix = sa.Column(JSONEncoded)
    last_error_code = sa.Column(sa.String(255))
    last_error = sa.Column(sa.Text)
    last_reconciled_at = sa.Column(Timestamp)
    # Pool-level backoff (a blocked step that names no host).
    attempts = sa.Column(sa.Integer, nullable=False, default=0,
                         server_default="0")
    # What the last pass left the pool waiting for (kind, host, deadline).
    waiting = sa.Column(JSONEncoded)
    # The metadata poolmgr last wrote into the aggregate.
    reflected = sa.Column(JSONEncoded)
    # The last canary proof of live migration (poolmgr.plan.proof).
    canary_proof = sa.Column(JSONEncoded)
    # A dead master (engine/failover.py): what the engine saw and did
    # (engine-owned), the promotion an operator asked for (written by
    # poolmgr-manage pool promote), and xapi HA as last seen on the master.
    failover = sa.Column(JSONEncoded)
    promote_request = sa.Column(JSONEncoded)
    ha_enabled = sa.Column(sa.Boolean)
    # The running maintenance operation (maintenance_operations.id), so a
    # pass learns of it from the pool row it reads anyway.
    maintenance_id = sa.Column(sa.Integer)


class PoolMember(Base, TimestampMixin):
    __tablename__ = "pool_members"
    __table_args__ = (
        sa.UniqueConstraint("aggregate_id", "host",
                            name="uniq_pool_members0aggregate_id0host"),
        TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    aggregate_id = sa.Column(sa.Integer, sa.ForeignKey("pools.aggregate_id",
                                                        ondelete="CASCADE"),
                             nullable=False)
    host = sa.Column(sa.String(255), nullable=False)
    state = sa.Column(sa.String(16), nullable=False, default="pending")
    xenserver_uuid = sa.Column(sa.String(36))
    error_code = sa.Column(sa.String(255))
    error_params = sa.Column(JSONEncoded)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    next_attempt_at = sa.Column(Timestamp)


class Operation(Base):
    """The journal: one row per mutating step, written before and after."""

    __tablename__ = "operations"
    __table_args__ = (
        sa.Index("ix_operations_aggregate_id", "aggregate_id", "id"),
        sa.Index("ix_operations_started_at", "started_at"),
        # The steps in flight (db.journal.operation_counts).
        sa.Index("ix_operations_status", "status"),
        TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    aggregate_id = sa.Column(sa.Integer, nullable=False)
    kind = sa.Column(sa.String(32), nullable=False)
    host = sa.Column(sa.String(255))
    step = sa.Column(sa.String(255))
    status = sa.Column(sa.String(16), nullable=False)
    attempts = sa.Column(sa.Integer, nullable=False, default=1)
    xapi_error_code = sa.Column(sa.String(255))
    xapi_error_params = sa.Column(JSONEncoded)
    cause = sa.Column(sa.String(255))
    owner = sa.Column(sa.String(255))
    generation = sa.Column(sa.Integer)
    started_at = sa.Column(Timestamp, nullable=False)
    finished_at = sa.Column(Timestamp)
    # Compute node downtime of a join (shutdown to running again).
    downtime_s = sa.Column(sa.Float)


class Notification(Base):
    """Every notification received, with what became of it."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("message_id",
                            name="uniq_notifications0message_id"),
        sa.Index("ix_notifications_received_at", "received_at"),
        TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    message_id = sa.Column(sa.String(64), nullable=False)
    event_type = sa.Column(sa.String(255))
    publisher_id = sa.Column(sa.String(255))
    aggregate_id = sa.Column(sa.Integer)
    outcome = sa.Column(sa.String(16), nullable=False)
    reason = sa.Column(sa.Text)
    event_time = sa.Column(Timestamp)
    received_at = sa.Column(Timestamp, nullable=False)


class Counter(Base):
    """A monotonic counter that retention never reaches (``_total``)."""

    __tablename__ = "counters"
    __table_args__ = TABLE_ARGS

    name = sa.Column(sa.String(128), primary_key=True)
    value = sa.Column(sa.BigInteger, nullable=False, default=0)


class ServiceStatus(Base):
    """A named fact the daemon publishes (e.g. the last Nova sync)."""

    __tablename__ = "service_status"
    __table_args__ = TABLE_ARGS

    name = sa.Column(sa.String(64), primary_key=True)
    value = sa.Column(JSONEncoded)
    updated_at = sa.Column(Timestamp, nullable=False)


class MaintenanceOperation(Base, TimestampMixin):
    """A drain, undrain or rolling reboot asked for by an operator.

    The engine acts on the running one of a pool under the pool's lease,
    phase by phase; each phase is written here, so a restarted engine
    resumes where the last one was (engine/maintenance.py).
    """

    __tablename__ = "maintenance_operations"
    __table_args__ = (
        sa.Index("ix_maintenance_operations_aggregate_id", "aggregate_id",
                 "id"),
        # NOTE(one-at-a-time): set to aggregate_id while the operation
        # runs, NULL once it ended: a second running operation of the same
        # pool is refused by the database itself.
        sa.UniqueConstraint("running_aggregate_id",
                            name="uniq_maintenance_operations0running"),
        TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    aggregate_id = sa.Column(sa.Integer, nullable=False)
    running_aggregate_id = sa.Column(sa.Integer)
    kind = sa.Column(sa.String(32), nullable=False)
    hosts = sa.Column(JSONEncoded, nullable=False)
    current_host = sa.Column(sa.String(255))
    phase = sa.Column(sa.String(32), nullable=False)
    status = sa.Column(sa.String(16), nullable=False)
    reason = sa.Column(sa.Text)
    # What the phases need across passes: the reboot's start and deadline,
    # the blockers found.
    detail = sa.Column(JSONEncoded)
    finished_at = sa.Column(Timestamp)
