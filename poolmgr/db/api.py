"""Repository functions: the only place that reads and writes the tables.

Every function opens its own short transaction through oslo.db's
enginefacade. ``configure(conf)`` (or ``configure_url(url)``) must run first;
calling it again points the module at another database (tests do this).
"""

import datetime
import json
import threading
import urllib.parse
import uuid

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
from oslo_log import log as logging
from oslo_utils import timeutils
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.dialects import sqlite as sa_sqlite

from poolmgr.conf import database as database_opts
from poolmgr.db import models
from poolmgr import desired
from poolmgr import events

LOG = logging.getLogger(__name__)

# Notification outcomes, as stored in notifications.outcome.
APPLIED = "applied"
DUPLICATE = "duplicate"
STALE = "stale"
RECORDED = "recorded"
IGNORED = "ignored"
REJECTED = "rejected"

# Pool and member states (ARCHITECTURE.md "States").
POOL_CREATED = "created"
POOL_CHANGING = "changing"
POOL_ACTIVE = "active"
POOL_ERROR = "error"
POOL_DISMISSED = "dismissed"
POOL_STATES = (POOL_CREATED, POOL_CHANGING, POOL_ACTIVE, POOL_ERROR,
               POOL_DISMISSED)

MEMBER_PENDING = "pending"
MEMBER_PREFLIGHT = "preflight"
MEMBER_JOINING = "joining"
MEMBER_ACTIVE = "active"
MEMBER_EJECTING = "ejecting"
MEMBER_REMOVED = "removed"
MEMBER_ERROR = "error"

# Journal statuses.
OP_STARTED = "started"
OP_SUCCEEDED = "succeeded"
OP_FAILED = "failed"
OP_ABANDONED = "abandoned"

_LOCK = threading.Lock()
_CONTEXT = None


class NotFound(Exception):
    """The row asked for does not exist."""


class _Ctx:
    """A fresh, throw-away context object for one enginefacade transaction."""


def configure(conf, **overrides):
    """Point the repository at ``[database] connection``."""
    # NOTE(own-options): poolmgr's retention options live in [database]
    # too; enginefacade would warn about each of them.
    ours = {opt.dest for opt in database_opts.OPTS}
    options = {k: v for k, v in conf.database.items()
               if k not in ("backend", "use_db_reconnect", "db_max_retries",
                            "db_retry_interval", "db_inc_retry_interval",
                            "db_max_retry_interval", "use_tpool")
               and k not in ours and v is not None}
    options.update(overrides)
    _configure(options)


def configure_url(url, **options):
    options["connection"] = url
    _configure(options)


def _configure(options):
    global _CONTEXT
    url = options.get("connection") or "sqlite://"
    if url.startswith("mysql://"):
        # NOTE(driver): PyMySQL is the pure-Python driver we depend on;
        # plain mysql:// would look for MySQLdb.
        url = "mysql+pymysql://" + url[len("mysql://"):]
    if url.startswith("mysql") and "charset=" not in url:
        # NOTE(charset): the tables are utf8mb4; oslo.db would otherwise
        # connect with 3-byte utf8 and refuse text outside the BMP.
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    options["connection"] = url
    # NOTE(retries): oslo.db would retry the initial connection
    # max_retries times with sleeps; callers decide instead (the CLI fails
    # fast, the intake requeues).
    options.setdefault("max_retries", 0)
    options["sqlite_fk"] = True
    ctx = enginefacade.transaction_context()
    ctx.configure(**options)
    with _LOCK:
        old, _CONTEXT = _CONTEXT, ctx
    if old is not None:
        try:
            old.writer.get_engine().dispose()
        except Exception:  # noqa: BLE001 - the old engine may never have run
            pass


def is_configured():
    """True once configure() pointed this module at a database."""
    return _CONTEXT is not None


def _context():
    if _CONTEXT is None:
        raise RuntimeError("poolmgr.db.api.configure() was not called")
    return _CONTEXT


def _writer():
    return _context().writer.using(_Ctx())


def _reader():
    return _context().reader.using(_Ctx())


def get_engine():
    return _context().writer.get_engine()


def dispose():
    global _CONTEXT
    with _LOCK:
        old, _CONTEXT = _CONTEXT, None
    if old is not None:
        old.writer.get_engine().dispose()


def _now():
    return timeutils.utcnow()


def _stamp(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _row_dict(row):
    if row is None:
        return None
    result = {attr.key: getattr(row, attr.key)
              for attr in row.__mapper__.column_attrs}
    if "metadata_" in result:
        result["metadata"] = result.pop("metadata_")
    return result


# ---------------------------------------------------------------------------
# Desired state: notifications
# ---------------------------------------------------------------------------

def _apply_stamped(stamps, key, present, ts, value=None, pos=0):
    """Last-writer-wins on one host or metadata key; True if it changed."""
    current = stamps.get(key)
    if current is not None and current["ts"] > ts:
        return False
    was_present = bool(current and current["present"])
    entry = {"ts": ts, "present": present}
    if present:
        entry["value"] = value
        entry["since"] = current["since"] if was_present else ts
        entry["pos"] = current["pos"] if was_present else pos
    stamps[key] = entry
    return (was_present != present
            or (present and current.get("value") != value))


# NOTE(snapshot): a full snapshot (versioned notification, API listing)
# says every host and key it does not list is absent at its time, including
# ones not heard of yet. The newest snapshot's time is kept as a tombstone
# under a key no Nova host name or metadata key can be (both are at least
# one character), so an older delta about an unseen host or key, delivered
# late, cannot bring it back.
_SNAPSHOT = ""


def _unseen_is_absent(stamps, key, ts, marker_ts):
    if key not in stamps and marker_ts is not None and marker_ts > ts:
        stamps[key] = {"ts": marker_ts, "present": False}


def _derive(agg):
    stamps = agg.host_stamps
    snaps = [e["snap"] for e in stamps.values()
             if e["present"] and e.get("snap")]
    newest = max(snaps) if snaps else None

    def order(h):
        # NOTE(order): hosts listed by the newest full snapshot (versioned
        # notification or API listing) and present ever since come in its
        # order (Nova's); hosts added after it follow, oldest first.
        e = stamps[h]
        if newest is not None and e.get("snap") == newest \
                and e["since"] <= newest:
            return (0, "", e["pos"], h)
        return (1, e["since"], e["pos"], h)

    agg.hosts = sorted((h for h, e in stamps.items() if e["present"]),
                       key=order)
    agg.metadata_ = {k: e["value"] for k, e in agg.meta_stamps.items()
                     if e["present"]}


def merge_event(agg, event):
    """Fold one notification into the aggregate mirror; True if it changed.

    NOTE(ordering): every host and metadata key carries the timestamp of the
    newest notification that spoke about it (with tombstones for removals),
    so a stream delivered shuffled or twice ends in the state of in-order
    delivery; a whole-aggregate timestamp would wrongly drop an older but
    unrelated legacy delta.
    """
    ts = _stamp(event.timestamp)
    host_stamps = dict(agg.host_stamps or {})
    meta_stamps = dict(agg.meta_stamps or {})
    changed = False
    if event.uuid and not agg.uuid:
        agg.uuid = event.uuid
    if event.name is not None and (agg.name_stamp is None
                                   or event.timestamp >= agg.name_stamp):
        changed |= agg.name != event.name
        agg.name = event.name
        agg.name_stamp = event.timestamp
    if event.kind == events.DELETE and not agg.deleted:
        # NOTE(delete): Nova never reuses aggregate ids, so a delete is final
        # whatever order the stream arrives in.
        agg.deleted = True
        changed = True
    host_marker = (host_stamps.get(_SNAPSHOT) or {}).get("ts")
    meta_marker = (meta_stamps.get(_SNAPSHOT) or {}).get("ts")
    if event.hosts is not None:
        payload = list(event.hosts)
        for key in set(host_stamps) | set(payload) | {_SNAPSHOT}:
            _unseen_is_absent(host_stamps, key, ts, host_marker)
            present = key in payload
            changed |= _apply_stamped(host_stamps, key, present, ts,
                                      value=True,
                                      pos=payload.index(key) if present else 0)
        for index, key in enumerate(payload):
            entry = host_stamps[key]
            if entry["present"] and entry["since"] <= ts and (
                    entry.get("snap") or "") <= ts:
                entry = dict(entry, snap=ts, pos=index)
                host_stamps[key] = entry
    elif event.host is not None and event.kind in (events.ADD_HOST,
                                                   events.REMOVE_HOST):
        _unseen_is_absent(host_stamps, event.host, ts, host_marker)
        changed |= _apply_stamped(host_stamps, event.host,
                                  event.kind == events.ADD_HOST, ts,
                                  value=True)
    if event.metadata is not None:
        for key in set(meta_stamps) | set(event.metadata) | {_SNAPSHOT}:
            _unseen_is_absent(meta_stamps, key, ts, meta_marker)
            present = key in event.metadata
            changed |= _apply_stamped(meta_stamps, key, present, ts,
                                      value=event.metadata.get(key))
    elif event.metadata_delta:
        for key, value in event.metadata_delta.items():
            _unseen_is_absent(meta_stamps, key, ts, meta_marker)
            changed |= _apply_stamped(meta_stamps, key, value is not None,
                                      ts, value=value)
    agg.host_stamps = host_stamps
    agg.meta_stamps = meta_stamps
    if agg.last_event_at is None or event.timestamp > agg.last_event_at:
        agg.last_event_at = event.timestamp
    _derive(agg)
    return changed


def _significant(agg):
    return desired.significant({
        "name": agg.name, "hosts": agg.hosts, "metadata": agg.metadata_,
        "deleted": agg.deleted, "host_stamps": agg.host_stamps})


def _new_aggregate(aggregate_id, now):
    return models.Aggregate(id=aggregate_id, hosts=[], metadata_={},
                            host_stamps={}, meta_stamps={}, deleted=False,
                            created_at=now, updated_at=now)


def _is_pool(agg):
    return (not agg.deleted) and events.POOL_FLAG in (agg.metadata_ or {})


def record_event(event):
    """Store one parsed notification; return its outcome.

    Deduplicates by message_id (delivery is at least once), folds the event
    into the aggregate mirror and marks the pool due for reconciliation.
    Raises oslo_db exceptions when the database is unavailable.
    """
    return record_events([event])[0]


def _touch_pool(session, agg, now, cause):
    pool = session.get(models.Pool, agg.id, with_for_update=True)
    if pool is None:
        if not _is_pool(agg):
            return
        pool = models.Pool(aggregate_id=agg.id, state=POOL_CREATED,
                           generation=0, reasons=["not reconciled yet"],
                           live_migration_ready=False,
                           created_at=now, updated_at=now)
        session.add(pool)
    elif pool.state == POOL_DISMISSED and _is_pool(agg):
        pool.state = POOL_CREATED
    pool.due_at = now
    pool.updated_at = now


def _touch_pools(session, aggs, now):
    """_touch_pool for ``{aggregate_id: agg}``, in a few statements.

    NOTE(round-trips): the intake touches several pools per batch; one
    locking read, one UPDATE and one INSERT for all of them instead of a
    read and a write each is what keeps a batch's transaction short.
    """
    if not aggs:
        return
    ids = sorted(aggs)
    states = dict(session.execute(
        sa.select(models.Pool.aggregate_id, models.Pool.state).where(
            models.Pool.aggregate_id.in_(ids)).order_by(
            models.Pool.aggregate_id).with_for_update()).all())
    new = [dict(aggregate_id=i, state=POOL_CREATED, generation=0,
                reasons=["not reconciled yet"], live_migration_ready=False,
                attempts=0, created_at=now, updated_at=now, due_at=now)
           for i in ids if i not in states and _is_pool(aggs[i])]
    revived = [i for i, state in states.items()
               if state == POOL_DISMISSED and _is_pool(aggs[i])]
    if states:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id.in_(sorted(states))).values(
            due_at=now, updated_at=now).execution_options(
            synchronize_session=False))
    if revived:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id.in_(revived)).values(
            state=POOL_CREATED).execution_options(
            synchronize_session=False))
    if new:
        session.execute(sa.insert(models.Pool), new)


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def record_rejected(message_id, event_type, publisher_id, reason,
                    label=None, fingerprint=None):
    """Store a notification that could not be parsed (outcome rejected).

    ``label`` is the event type its counter is filed under (default: the
    event type). A message without a message_id is stored as
    ``unknown-<fingerprint>`` when the caller can fingerprint its content,
    so a redelivery of it is a duplicate while another message is not;
    without a fingerprint the made-up id is unique.
    """
    message_id = str(message_id or "")[:64] or None
    now = _now()
    if message_id is None:
        # NOTE(unknown-id): the receive time alone made two different
        # messages of one instant collide, the second counted a duplicate.
        message_id = "unknown-" + (fingerprint or "%s-%s" % (
            _stamp(now), uuid.uuid4().hex[:16]))
    label = _clip(event_type if label is None else label, _MAX_LABEL)
    try:
        with _writer() as session:
            seen = session.scalar(sa.select(models.Notification.id).where(
                models.Notification.message_id == message_id))
            if seen is not None:
                _bump(session, {_counter(DUPLICATES, label): 1})
                return DUPLICATE
            session.add(models.Notification(
                message_id=message_id,
                event_type=_clip(event_type), publisher_id=_clip(publisher_id),
                outcome=REJECTED, reason=str(reason)[:2000],
                received_at=now))
            session.flush()
            _bump(session, {_counter(NOTIFICATIONS, REJECTED, label): 1})
    except db_exc.DBDuplicateEntry:
        add_counters({_counter(DUPLICATES, label): 1})
        return DUPLICATE
    return REJECTED


def _clip(value, size=255):
    if value is None:
        return None
    return str(value)[:size]


def list_notifications(limit=50, outcome=None):
    with _reader() as session:
        query = sa.select(models.Notification).order_by(
            models.Notification.id.desc()).limit(limit)
        if outcome:
            query = query.where(models.Notification.outcome == outcome)
        return [_row_dict(r) for r in session.scalars(query)]


def notification_counts():
    """{(event_type, outcome): count} of every notification ever stored.

    Read from the counters, so a purge of the log never lowers it;
    duplicates and skipped messages are counted apart (duplicate_counts,
    skipped_count) since they never become a row.
    """
    result = {}
    for name, value in counter_values(NOTIFICATIONS + _SEP).items():
        _, outcome, event_type = name.split(_SEP, 2)
        result[(event_type, outcome)] = value
    return result


def last_notification_time():
    with _reader() as session:
        return session.scalar(sa.select(
            sa.func.max(models.Notification.received_at)))


def get_aggregate(aggregate_id):
    with _reader() as session:
        return _row_dict(session.get(models.Aggregate, aggregate_id))


def list_aggregates():
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.Aggregate).order_by(models.Aggregate.id))]


def find_aggregate(ref):
    """The aggregate named by id, uuid or name (the CLI's AGGREGATE)."""
    ref = str(ref)
    with _reader() as session:
        clauses = [models.Aggregate.uuid == ref,
                   models.Aggregate.name == ref]
        if ref.isdigit():
            clauses.insert(0, models.Aggregate.id == int(ref))
        rows = list(session.scalars(sa.select(models.Aggregate).where(
            sa.or_(*clauses)).order_by(models.Aggregate.deleted,
                                       models.Aggregate.id)))
    if not rows:
        raise NotFound("aggregate %s not found" % ref)
    # An id match wins over a name that happens to be digits.
    for row in rows:
        if ref.isdigit() and row.id == int(ref):
            return _row_dict(row)
    return _row_dict(rows[0])


def put_aggregate(aggregate_id, name, hosts, metadata, uuid=None,
                  deleted=False, when=None):
    """Write desired state directly (demo and tests without a bus).

    Goes through the same last-writer-wins merge as a versioned
    notification so later notifications still order correctly.
    """
    event = events.AggregateEvent(
        message_id="direct-%s" % _stamp(when or _now()),
        event_type="aggregate.direct.end", publisher_id="poolmgr",
        timestamp=when or _now(),
        kind=events.DELETE if deleted else events.UPDATE_METADATA,
        phase=events.END, versioned=True, aggregate_id=aggregate_id,
        uuid=uuid, name=name, hosts=tuple(hosts), metadata=dict(metadata))
    now = _now()
    with _writer() as session:
        agg = session.get(models.Aggregate, aggregate_id,
                          with_for_update=True)
        if agg is None:
            agg = _new_aggregate(aggregate_id, now)
            session.add(agg)
        merge_event(agg, event)
        agg.updated_at = now
        _touch_pool(session, agg, now, "manual")


# ---------------------------------------------------------------------------
# Host inventory
# ---------------------------------------------------------------------------

def register_host(compute_host, xapi_url):
    """Map a Nova compute host to its xapi URL (insert or update).

    The pools that want the host (in their aggregate or among their
    members) are due at once: the operator just fixed what they waited on,
    so they need not sit out their backoff.
    """
    now = _now()
    with _writer() as session:
        host = session.get(models.Host, compute_host)
        created = host is None
        if created:
            session.add(models.Host(compute_host=compute_host,
                                    xapi_url=xapi_url, created_at=now,
                                    updated_at=now))
        else:
            if host.xapi_url != xapi_url:
                host.xapi_url = xapi_url
                host.xenserver_uuid = None
            host.updated_at = now
        _mark_pools_wanting_due(session, compute_host, now)
        return created


def _mark_pools_wanting_due(session, compute_host, now):
    rows = session.execute(sa.select(
        models.Aggregate.id, models.Aggregate.hosts).where(
        models.Aggregate.deleted.is_(False)))
    wanting = {agg_id for agg_id, hosts in rows
               if compute_host in (hosts or ())}
    wanting |= set(session.scalars(sa.select(
        models.PoolMember.aggregate_id).where(
        models.PoolMember.host == compute_host)))
    if wanting:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id.in_(sorted(wanting)),
            models.Pool.state != POOL_DISMISSED).values(
            due_at=now, updated_at=now))


def get_host(compute_host):
    with _reader() as session:
        row = session.get(models.Host, compute_host)
        if row is None:
            raise NotFound("host %s is not registered" % compute_host)
        return _row_dict(row)


def list_hosts():
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.Host).order_by(models.Host.compute_host))]


def get_hosts(compute_hosts):
    """{compute_host: row} for the registered ones among ``compute_hosts``."""
    if not compute_hosts:
        return {}
    with _reader() as session:
        return {r.compute_host: _row_dict(r) for r in session.scalars(
            sa.select(models.Host).where(
                models.Host.compute_host.in_(list(compute_hosts))))}


def remove_host(compute_host):
    with _writer() as session:
        row = session.get(models.Host, compute_host)
        if row is None:
            raise NotFound("host %s is not registered" % compute_host)
        session.delete(row)


def set_host_xenserver_uuid(compute_host, uuid):
    with _writer() as session:
        row = session.get(models.Host, compute_host)
        if row is not None and row.xenserver_uuid != uuid:
            row.xenserver_uuid = uuid
            row.updated_at = _now()


def set_host_fingerprint(compute_host, fingerprint):
    """Pin (or, with None, unpin) the host's xapi certificate."""
    with _writer() as session:
        row = session.get(models.Host, compute_host)
        if row is None:
            raise NotFound("host %s is not registered" % compute_host)
        row.sha256_fingerprint = fingerprint
        row.updated_at = _now()


def pins_for_address(address):
    """The pinned fingerprints of the hosts whose xapi URL is at
    ``address`` (usually one; an empty set when none is pinned)."""
    if not address:
        return frozenset()
    address = address.strip("[]").lower()
    with _reader() as session:
        rows = session.execute(
            sa.select(models.Host.xapi_url, models.Host.sha256_fingerprint)
            .where(models.Host.sha256_fingerprint.is_not(None))).all()
    return frozenset(
        pin for url, pin in rows
        if (urllib.parse.urlsplit(url).hostname or "").lower() == address)


# ---------------------------------------------------------------------------
# Pools, members, leases
# ---------------------------------------------------------------------------

def get_pool(aggregate_id):
    with _reader() as session:
        return _row_dict(session.get(models.Pool, aggregate_id))


def list_pools():
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.Pool).order_by(models.Pool.aggregate_id))]


def update_pool(aggregate_id, **fields):
    fields["updated_at"] = _now()
    with _writer() as session:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id).values(**fields))


def mark_due(aggregate_id, when=None):
    update_pool(aggregate_id, due_at=when or _now())


def list_due_pools(limit=100, now=None):
    """Ids of pools due for a pass whose lease is free or expired."""
    now = now or _now()
    with _reader() as session:
        query = sa.select(models.Pool.aggregate_id).where(
            models.Pool.due_at.is_not(None),
            models.Pool.due_at <= now,
            sa.or_(models.Pool.lease_owner.is_(None),
                   models.Pool.lease_expires_at < now),
        ).order_by(models.Pool.due_at).limit(limit)
        return list(session.scalars(query))


def next_due_time():
    with _reader() as session:
        return session.scalar(sa.select(sa.func.min(models.Pool.due_at)))


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def acquire_lease(aggregate_id, owner, lease_time):
    """Take the pool's lease; return the new fencing generation or None.

    A single conditional UPDATE decides the race: only one of several
    processes can move a free or expired lease to itself. Each acquisition
    bumps ``generation`` so a holder that lost its lease (paused, slow) can
    no longer pass ``check_lease``.
    """
    now = _now()
    with _writer() as session:
        result = session.execute(
            sa.update(models.Pool).where(
                models.Pool.aggregate_id == aggregate_id,
                sa.or_(models.Pool.lease_owner.is_(None),
                       models.Pool.lease_expires_at < now,
                       models.Pool.lease_owner == owner),
            ).values(lease_owner=owner,
                     lease_expires_at=now + datetime.timedelta(
                         seconds=lease_time),
                     generation=models.Pool.generation + 1))
        if result.rowcount != 1:
            return None
        return session.scalar(sa.select(models.Pool.generation).where(
            models.Pool.aggregate_id == aggregate_id))


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def renew_lease(aggregate_id, owner, generation, lease_time):
    """Extend a held lease; False when it was lost (expired and taken)."""
    now = _now()
    with _writer() as session:
        result = session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id,
            models.Pool.lease_owner == owner,
            models.Pool.generation == generation,
        ).values(lease_expires_at=now + datetime.timedelta(
            seconds=lease_time)))
        return result.rowcount == 1


def check_lease(aggregate_id, owner, generation):
    """True when ``owner`` still holds an unexpired lease at ``generation``.

    Called right before every xapi mutation (the fencing check).
    """
    now = _now()
    with _reader() as session:
        row = session.execute(sa.select(
            models.Pool.lease_owner, models.Pool.generation,
            models.Pool.lease_expires_at).where(
            models.Pool.aggregate_id == aggregate_id)).first()
    return bool(row and row[0] == owner and row[1] == generation
                and row[2] is not None and row[2] > now)


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def release_lease(aggregate_id, owner, generation, due_at=None,
                  marked_since=None):
    """Give the lease back; optionally schedule the next pass.

    ``marked_since``: when the pass started. A pool marked due after that
    (a notification stored during the pass) keeps its earlier due time.
    """
    values = {"lease_owner": None, "lease_expires_at": None,
              "updated_at": _now()}
    if due_at is not None and marked_since is not None:
        # NOTE(wake-up): decided in the UPDATE itself, so a notification
        # stored between a read and this write cannot be lost either.
        values["due_at"] = sa.case(
            (sa.and_(models.Pool.due_at.is_not(None),
                     models.Pool.due_at > marked_since,
                     models.Pool.due_at < due_at), models.Pool.due_at),
            else_=due_at)
    elif due_at is not None:
        values["due_at"] = due_at
    with _writer() as session:
        result = session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id,
            models.Pool.lease_owner == owner,
            models.Pool.generation == generation).values(**values))
        return result.rowcount == 1


def list_members(aggregate_id):
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.PoolMember).where(
                models.PoolMember.aggregate_id == aggregate_id).order_by(
                models.PoolMember.id))]


def list_all_members():
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.PoolMember).order_by(
                models.PoolMember.aggregate_id, models.PoolMember.id))]


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def upsert_member(aggregate_id, host, **fields):
    now = _now()
    with _writer() as session:
        # NOTE(one-statement): the row exists on nearly every call (the
        # engine's steps); one UPDATE, and the INSERT only when it did not.
        updated = session.execute(sa.update(models.PoolMember).where(
            models.PoolMember.aggregate_id == aggregate_id,
            models.PoolMember.host == host).values(
            updated_at=now, **fields)).rowcount
        if updated:
            return
        row = session.scalar(sa.select(models.PoolMember).where(
            models.PoolMember.aggregate_id == aggregate_id,
            models.PoolMember.host == host))
        if row is None:
            row = models.PoolMember(aggregate_id=aggregate_id, host=host,
                                    state=MEMBER_PENDING, attempts=0,
                                    created_at=now)
            session.add(row)
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = now


def delete_member(aggregate_id, host):
    with _writer() as session:
        session.execute(sa.delete(models.PoolMember).where(
            models.PoolMember.aggregate_id == aggregate_id,
            models.PoolMember.host == host))


# ---------------------------------------------------------------------------
# Pool ownership (poolmgr/engine/ownership.py decides; these read and write)
# ---------------------------------------------------------------------------

# Member states in which a host is (or is becoming) part of the xapi pool.
_IN_POOL_STATES = (MEMBER_JOINING, MEMBER_ACTIVE, MEMBER_EJECTING)


def _like_json_string(name):
    """A LIKE pattern matching ``name`` as a string inside a JSON list."""
    quoted = json.dumps(name)
    for char in ("\\", "%", "_"):
        quoted = quoted.replace(char, "\\" + char)
    return "%" + quoted + "%"


def pool_claimants(pool_uuid, compute_hosts):
    """The managed aggregates contesting a xapi pool, by id.

    An aggregate (flagged hypervisor_pool, not deleted) contests the pool
    when it recorded it as its pool (``pools.pool_uuid``), when one of
    ``compute_hosts`` (the pool's hosts, as compute host names) is among
    its desired hosts, or when it recorded one of them as a member.
    Returns [(id, name, the hosts of ``compute_hosts`` it wants)].
    """
    hosts = sorted(set(h for h in compute_hosts if h))
    ids = set()
    with _reader() as session:
        if pool_uuid:
            ids.update(session.scalars(sa.select(models.Pool.aggregate_id)
                                       .where(models.Pool.pool_uuid
                                              == pool_uuid)))
        if hosts:
            ids.update(session.scalars(sa.select(
                models.PoolMember.aggregate_id).where(
                models.PoolMember.host.in_(hosts),
                models.PoolMember.state.in_(_IN_POOL_STATES))))
            # NOTE(like): a cheap filter on the JSON text; the match is
            # confirmed on the decoded list below.
            rows = session.execute(sa.select(
                models.Aggregate.id, models.Aggregate.hosts).where(
                models.Aggregate.deleted.is_(False),
                sa.or_(*[sa.type_coerce(models.Aggregate.hosts, sa.Text).like(
                    _like_json_string(h), escape="\\") for h in hosts])))
            ids.update(agg_id for agg_id, agg_hosts in rows
                       if set(agg_hosts or ()) & set(hosts))
        if not ids:
            return []
        wanted = {}
        if hosts:
            for agg_id, host in session.execute(sa.select(
                    models.PoolMember.aggregate_id,
                    models.PoolMember.host).where(
                    models.PoolMember.aggregate_id.in_(sorted(ids)),
                    models.PoolMember.host.in_(hosts),
                    models.PoolMember.state.in_(_IN_POOL_STATES))):
                wanted.setdefault(agg_id, set()).add(host)
        aggs = session.scalars(sa.select(models.Aggregate).where(
            models.Aggregate.id.in_(sorted(ids))))
        return sorted(
            (a.id, a.name, frozenset((set(a.hosts or ()) & set(hosts))
                                     | wanted.get(a.id, set())))
            for a in aggs if _is_pool(a))


def compute_hosts_by_uuid(xenserver_uuids):
    """{xenserver uuid: compute host} for the registered ones."""
    uuids = sorted(set(u for u in xenserver_uuids if u))
    if not uuids:
        return {}
    with _reader() as session:
        return {u: h for h, u in session.execute(sa.select(
            models.Host.compute_host, models.Host.xenserver_uuid).where(
            models.Host.xenserver_uuid.in_(uuids)))}


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def claim_pool_uuid(aggregate_id, pool_uuid):
    """Record ``pool_uuid`` as this aggregate's pool (pools.pool_uuid).

    The caller decided it owns the pool (engine.ownership); a row of
    another aggregate that still names it (it lost the pool to this one)
    lets go of it in the same transaction, as the unique key requires.
    """
    now = _now()
    with _writer() as session:
        session.execute(sa.update(models.Pool).where(
            models.Pool.pool_uuid == pool_uuid,
            models.Pool.aggregate_id != aggregate_id).values(
            pool_uuid=None, updated_at=now))
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id).values(
            pool_uuid=pool_uuid, updated_at=now))


def retry_pool(aggregate_id, host=None):
    """Clear errors so the engine tries again; returns members cleared."""
    now = _now()
    with _writer() as session:
        query = sa.update(models.PoolMember).where(
            models.PoolMember.aggregate_id == aggregate_id,
            models.PoolMember.state == MEMBER_ERROR)
        if host is not None:
            query = query.where(models.PoolMember.host == host)
        cleared = session.execute(query.values(
            state=MEMBER_PENDING, error_code=None, error_params=None,
            attempts=0, next_attempt_at=None, updated_at=now)).rowcount
        pool_values = {"due_at": now, "updated_at": now,
                       "last_error_code": None, "last_error": None}
        pool = session.get(models.Pool, aggregate_id)
        if pool is None:
            raise NotFound("aggregate %s has no pool" % aggregate_id)
        if pool.state == POOL_ERROR:
            pool_values["state"] = POOL_CHANGING
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id).values(**pool_values))
        return cleared


# ---------------------------------------------------------------------------
# Journal
# ---------------------------------------------------------------------------

def journal_start(aggregate_id, kind, host=None, step=None, cause=None,
                  owner=None, generation=None, attempts=1):
    """Write the 'before' row of a mutating step; return its id."""
    with _writer() as session:
        op = models.Operation(
            aggregate_id=aggregate_id, kind=kind, host=host,
            step=_clip(step), status=OP_STARTED, attempts=attempts,
            cause=_clip(cause), owner=_clip(owner), generation=generation,
            started_at=_now())
        session.add(op)
        session.flush()
        _bump(session, {_counter(OPERATIONS, kind, OP_STARTED, ""): 1})
        return op.id


def journal_finish(op_id, status, xapi_error_code=None,
                   xapi_error_params=None, owner=None, generation=None):
    """Write the 'after' of a step: succeeded, failed or abandoned.

    Only a row still ``started`` is finished, so a row the next lease
    holder closed ``abandoned`` stays abandoned. With ``owner`` and
    ``generation`` the write is fenced like a mutation: it happens only if
    the row was started by that holder and the pool's lease is still
    theirs at that generation. Returns False when nothing was written (the
    caller lost its lease or the row was closed by someone else).
    """
    conditions = [models.Operation.id == op_id,
                  models.Operation.status == OP_STARTED]
    if owner is not None or generation is not None:
        holder = sa.select(models.Pool.aggregate_id).where(
            models.Pool.aggregate_id == models.Operation.aggregate_id,
            models.Pool.lease_owner == owner,
            models.Pool.generation == generation)
        conditions += [models.Operation.owner == _clip(owner),
                       models.Operation.generation == generation,
                       holder.exists()]
    with _writer() as session:
        result = session.execute(sa.update(models.Operation).where(
            *conditions).values(
            status=status, xapi_error_code=_clip(xapi_error_code),
            xapi_error_params=(list(xapi_error_params)
                               if xapi_error_params is not None else None),
            finished_at=_now()).execution_options(
            synchronize_session=False))
        if result.rowcount == 1:
            kind = session.scalar(sa.select(models.Operation.kind).where(
                models.Operation.id == op_id))
            _bump(session, {_counter(OPERATIONS, kind, status,
                                     xapi_error_code or ""): 1})
        return result.rowcount == 1


def list_operations(aggregate_id=None, limit=100, kind=None, host=None):
    """The journal, newest first."""
    with _reader() as session:
        query = sa.select(models.Operation).order_by(
            models.Operation.id.desc()).limit(limit)
        if aggregate_id is not None:
            query = query.where(models.Operation.aggregate_id == aggregate_id)
        if kind is not None:
            query = query.where(models.Operation.kind == kind)
        if host is not None:
            query = query.where(models.Operation.host == host)
        return [_row_dict(r) for r in session.scalars(query)]


def unfinished_operations(aggregate_id):
    """Steps journaled as started but never finished (a crash mid-step)."""
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.Operation).where(
                models.Operation.aggregate_id == aggregate_id,
                models.Operation.status == OP_STARTED).order_by(
                models.Operation.id))]


def operation_counts():
    """{(kind, status, xapi_error_code): count} of every step ever journaled.

    ``started`` counts steps begun, the other statuses steps finished; read
    from the counters, so a purge of the journal never lowers them.
    """
    result = {}
    for name, value in counter_values(OPERATIONS + _SEP).items():
        _, kind, status, code = name.split(_SEP, 3)
        result[(kind, status, code or None)] = value
    return result


# ---------------------------------------------------------------------------
# Batched intake (added by the daemon helper; same semantics as record_event)
# ---------------------------------------------------------------------------

@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def _record_events_once(batch):
    now = _now()
    outcomes = [None] * len(batch)
    with _writer() as session:
        ids = list({e.message_id for e in batch})
        seen = set(session.scalars(sa.select(
            models.Notification.message_id).where(
            models.Notification.message_id.in_(ids))))
        fresh = []
        for index, event in enumerate(batch):
            if event.message_id in seen:
                outcomes[index] = DUPLICATE
            else:
                seen.add(event.message_id)
                fresh.append(index)
        agg_ids = sorted({batch[i].aggregate_id for i in fresh
                          if batch[i].phase == events.END
                          and batch[i].aggregate_id is not None})
        # NOTE(locks): rows are locked in id order so that concurrent
        # batches touching the same aggregates queue instead of deadlocking.
        aggs = {a.id: a for a in session.scalars(
            sa.select(models.Aggregate).where(
                models.Aggregate.id.in_(agg_ids)).order_by(
                models.Aggregate.id).with_for_update())} if agg_ids else {}
        rows, touched = [], {}
        for index in fresh:
            event = batch[index]
            row = dict(message_id=event.message_id,
                       event_type=event.event_type,
                       publisher_id=event.publisher_id,
                       aggregate_id=event.aggregate_id, outcome=RECORDED,
                       reason=None, event_time=event.timestamp,
                       received_at=now)
            if event.phase == events.END and event.aggregate_id is None:
                row.update(outcome=IGNORED, reason="no aggregate id")
            elif event.phase == events.END:
                agg = aggs.get(event.aggregate_id)
                if agg is None:
                    agg = aggs[event.aggregate_id] = _new_aggregate(
                        event.aggregate_id, now)
                    session.add(agg)
                previous_event_at = agg.last_event_at
                before = _significant(agg)
                changed = merge_event(agg, event)
                agg.updated_at = now
                if changed or previous_event_at is None or (
                        event.timestamp >= previous_event_at):
                    row["outcome"] = APPLIED
                else:
                    row["outcome"] = STALE
                if changed:
                    agg.last_cause = event.cause
                # NOTE(reflection): a change of poolmgr's own metadata keys
                # (the update_metadata its reflection caused) is stored but
                # gives the engine no work, so it cannot loop.
                if _significant(agg) != before:
                    touched[agg.id] = (agg, event.cause)
            outcomes[index] = row["outcome"]
            rows.append(row)
        session.flush()
        _touch_pools(session, {a.id: a for a, _ in touched.values()}, now)
        if rows:
            session.execute(sa.insert(models.Notification), rows)
        counts = {}
        for event, outcome in zip(batch, outcomes):
            name = (_counter(DUPLICATES, event.event_type)
                    if outcome == DUPLICATE else
                    _counter(NOTIFICATIONS, outcome, event.event_type))
            counts[name] = counts.get(name, 0) + 1
        _bump(session, counts)
    return outcomes


def record_events(batch):
    """record_event() for a list of events in one transaction.

    Returns the outcomes in the order of ``batch``. A message_id repeated
    inside the batch counts once, the copies as duplicates.
    """
    if not batch:
        return []
    try:
        return _record_events_once(batch)
    except db_exc.DBDuplicateEntry:
        # NOTE(race): another intake stored one of these messages or the
        # first row of an aggregate meanwhile; the retry sees its rows.
        return _record_events_once(batch)


# ---------------------------------------------------------------------------
# Counters: monotonic totals that retention never reaches
# ---------------------------------------------------------------------------

# NOTE(counters): Prometheus ``_total`` families must never go backwards,
# and `db purge` deletes log and journal rows. So whatever writes a row
# bumps its counter in the same transaction, and status and /metrics read
# only this small table (no GROUP BY over millions of rows).
_SEP = "|"
NOTIFICATIONS = "notifications"
DUPLICATES = "duplicates"
OPERATIONS = "operations"
SKIPPED = "skipped"
# Counter names are at most 128 characters; labels are clipped to fit.
_MAX_LABEL = 64


def _counter(family, *labels):
    return _SEP.join([family] + [_clip(str(label), _MAX_LABEL)
                                 for label in labels])


def _bump(session, counts):
    """Add ``{name: n}`` to the counters inside the caller's transaction."""
    rows = [{"name": name, "value": value}
            for name, value in sorted(counts.items()) if value]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    # NOTE(upsert): one statement per transaction whatever the number of
    # names; rows in name order so concurrent writers lock them in one
    # order and queue instead of deadlocking.
    if dialect in ("mysql", "mariadb"):
        stmt = sa_mysql.insert(models.Counter).values(rows)
        stmt = stmt.on_duplicate_key_update(
            value=models.Counter.value + stmt.inserted.value)
    elif dialect == "sqlite":
        stmt = sa_sqlite.insert(models.Counter).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[models.Counter.name],
            set_={"value": models.Counter.value + stmt.excluded.value})
    else:
        for row in rows:
            counter = session.get(models.Counter, row["name"],
                                  with_for_update=True)
            if counter is None:
                session.add(models.Counter(**row))
            else:
                counter.value += row["value"]
        return
    session.execute(stmt)


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def add_counters(counts):
    """Add ``{name: n}`` to the counters in a transaction of their own."""
    with _writer() as session:
        _bump(session, counts)


def count_skipped(count):
    """Count messages the intake looked at and let go (not aggregates)."""
    add_counters({SKIPPED: count})


def counter_values(prefix=None):
    """{name: value} of the counters (those starting with ``prefix``)."""
    with _reader() as session:
        query = sa.select(models.Counter.name, models.Counter.value)
        if prefix:
            query = query.where(models.Counter.name.startswith(
                prefix, autoescape=True))
        return {name: value for name, value in session.execute(query)}


def duplicate_counts():
    """{event_type: count} of redelivered notifications acked unstored."""
    return {name.split(_SEP, 1)[1]: value for name, value in
            counter_values(DUPLICATES + _SEP).items()}


def skipped_count():
    """Messages that were not aggregate notifications, never stored."""
    return counter_values(SKIPPED).get(SKIPPED, 0)


# ---------------------------------------------------------------------------
# Desired-state sync from Nova's API, reflection, service status (NOVA)
# ---------------------------------------------------------------------------

class _DryRun(Exception):
    """Rolls the sync's transaction back, carrying what it would change."""

    def __init__(self, changes):
        super().__init__("dry run")
        self.changes = changes


def _agg_view(agg):
    return {"id": agg.id, "name": agg.name, "hosts": list(agg.hosts or []),
            "metadata": dict(agg.metadata_ or {}), "deleted": agg.deleted,
            "host_stamps": dict(agg.host_stamps or {}),
            "last_event_at": agg.last_event_at, "created_at": agg.created_at}


def apply_listing(listing, dry_run=False):
    """Fold one ``nova.Listing`` into the mirror; return what changed.

    Each listed aggregate goes through ``merge_event`` as a full snapshot
    stamped with the time the listing was asked for, so per host and per
    key a newer notification wins (see poolmgr.desired). Aggregates gone
    from the listing are deleted unless something about them is newer than
    the listing. Pools whose desired state changed are marked due; a new
    flagged aggregate gets its pool (adopted). ``dry_run`` rolls it all
    back and only reports.
    """
    try:
        return _apply_listing_once(listing, dry_run)
    except _DryRun as stop:
        return stop.changes


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def _apply_listing_once(listing, dry_run):
    now = _now()
    started = listing.started_at
    listed = {int(a["id"]): a for a in listing.aggregates}
    changes = []
    with _writer() as session:
        rows = {a.id: a for a in session.scalars(
            sa.select(models.Aggregate).where(sa.or_(
                models.Aggregate.id.in_(list(listed)),
                models.Aggregate.deleted.is_(False))).order_by(
                models.Aggregate.id).with_for_update())}
        for agg_id in sorted(set(listed) | set(rows)):
            agg = rows.get(agg_id)
            if agg_id in listed:
                event = desired.snapshot_event(listed[agg_id], started)
            elif agg.deleted or desired.newer_than(_agg_view(agg),
                                                   started):
                continue
            else:
                event = desired.deletion_event(agg_id, started)
            before = None if agg is None else _agg_view(agg)
            if agg is None:
                agg = _new_aggregate(agg_id, now)
                session.add(agg)
            merge_event(agg, event)
            if agg_id in listed:
                agg.api_synced_at = started
            change = desired.describe(before, _agg_view(agg))
            if change is not None:
                agg.updated_at = now
                agg.last_cause = "nova-sync"
                session.flush()
                _touch_pool(session, agg, now, "nova-sync")
                changes.append(change)
        if dry_run:
            raise _DryRun(changes)
    return changes


def set_reflected(aggregate_id, reflected):
    """Record the metadata poolmgr last wrote into the aggregate."""
    with _writer() as session:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id).values(
            reflected=reflected))


def set_service_status(name, value):
    now = _now()
    with _writer() as session:
        row = session.get(models.ServiceStatus, name)
        if row is None:
            session.add(models.ServiceStatus(name=name, value=value,
                                             updated_at=now))
        else:
            row.value = value
            row.updated_at = now


def get_service_status(name):
    with _reader() as session:
        return _row_dict(session.get(models.ServiceStatus, name))
