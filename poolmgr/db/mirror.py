"""The aggregate mirror: Nova's desired state, per host and key stamped.

Notifications (poolmgr.db.eventlog) and the API listing (``apply_listing``)
both fold into it through ``merge_event``; a change that matters marks the
aggregate's pool due.
"""


from oslo_db import api as oslo_db_api
import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _rows, _statement
from poolmgr.db.session import (
    NotFound, _writer, _reader, _now, _stamp, _row_dict)
from poolmgr.db.states import POOL_CREATED, POOL_DISMISSED
from poolmgr.plan import desired
from poolmgr import events


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


def _ts_text(when):
    """session._stamp(when), made in C where that gives the same text."""
    # NOTE(stamp): strftime pads no year below 1000 on glibc; isoformat
    # does.
    if when.tzinfo is None and when.year >= 1000:
        return when.isoformat(timespec="microseconds")
    return _stamp(when)


def merge_event(agg, event):
    """Fold one notification into the aggregate mirror; True if it changed.

    NOTE(ordering): every host and metadata key carries the timestamp of the
    newest notification that spoke about it (with tombstones for removals),
    so a stream delivered shuffled or twice ends in the state of in-order
    delivery; a whole-aggregate timestamp would wrongly drop an older but
    unrelated legacy delta.
    """
    ts = _ts_text(event.timestamp)
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
        # Each host's first place in the list (list.index, once).
        places = {}
        for index, key in enumerate(payload):
            places.setdefault(key, index)
        for key in set(host_stamps) | places.keys() | {_SNAPSHOT}:
            _unseen_is_absent(host_stamps, key, ts, host_marker)
            pos = places.get(key)
            changed |= _apply_stamped(host_stamps, key, pos is not None, ts,
                                      value=True, pos=pos or 0)
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


def _touch_pool(session, agg, now, cause):
    pool = session.get(models.Pool, agg.id, with_for_update=True)
    # NOTE(wake-up): the due time is read after the row lock is held; see
    # _touch_pools.
    now = _now()
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


def _touch_pools(session, aggs, now, text=None):
    """_touch_pool for ``{aggregate_id: agg}``, in a few statements.

    NOTE(round-trips): the intake touches several pools per batch; one
    locking read, one UPDATE and one INSERT for all of them instead of a
    read and a write each is what keeps a batch's transaction short.
    ``text``: the batch's eventlog._SQLText on MySQL, to send them as SQL
    text (see NOTE(sql-text) there).
    """
    if not aggs:
        return
    ids = sorted(aggs)
    # NOTE(core): Core statements on the table, built once; ORM-enabled
    # ones cost several times the CPU for the same SQL.
    if text is not None:
        states = dict(text.run(_TEXT_POOL_STATES % text.id_list(ids)).all())
    else:
        states = dict(session.execute(_POOL_STATES, {"ids": ids}).all())
    # NOTE(wake-up): the due time is read now that the rows are locked, not
    # when the batch began. A pass takes its start time before it acquires
    # the lease (an UPDATE of the same row, so it waits for this lock); a
    # mark stamped after that start is kept when the pass releases the
    # lease (db.leases.release_lease). Stamped before the locks, a batch
    # that committed while a pass was reading could be stamped earlier than
    # the pass's start, and its wake-up was overwritten by the pass's next
    # due time: the pool waited for the resync (seen in CI).
    now = _now()
    new = [dict(aggregate_id=i, state=POOL_CREATED, generation=0,
                reasons=["not reconciled yet"], live_migration_ready=False,
                attempts=0, created_at=now, updated_at=now, due_at=now)
           for i in ids if i not in states and _is_pool(aggs[i])]
    revived = [i for i, state in states.items()
               if state == POOL_DISMISSED and _is_pool(aggs[i])]
    if text is not None:
        if states:
            stamp = text.value(now)
            text.run(_TEXT_POOL_DUE % (stamp, stamp,
                                       text.id_list(sorted(states))))
        if revived:
            text.run(_TEXT_POOL_REVIVE % (text.value(POOL_CREATED),
                                          text.id_list(revived)))
        text.insert(_POOL_INSERT, new)
        return
    if states:
        session.execute(_POOL_DUE, {"ids": sorted(states), "now": now})
    if revived:
        session.execute(_POOL_REVIVE, {"ids": revived})
    if new:
        session.execute(_POOL_INSERT, new)


_POOLS = models.Pool.__table__
_POOL_STATES = sa.select(_POOLS.c.aggregate_id, _POOLS.c.state).where(
    _POOLS.c.aggregate_id.in_(sa.bindparam("ids", expanding=True))).order_by(
    _POOLS.c.aggregate_id).with_for_update()
_POOL_DUE = _POOLS.update().where(_POOLS.c.aggregate_id.in_(
    sa.bindparam("ids", expanding=True))).values(
    due_at=sa.bindparam("now"), updated_at=sa.bindparam("now"))
_POOL_REVIVE = _POOLS.update().where(_POOLS.c.aggregate_id.in_(
    sa.bindparam("ids", expanding=True))).values(state=POOL_CREATED)
_POOL_INSERT = _POOLS.insert()
_TEXT_POOL_STATES = ("SELECT aggregate_id, state FROM pools WHERE "
                     "aggregate_id IN (%s) ORDER BY aggregate_id FOR UPDATE")
_TEXT_POOL_DUE = ("UPDATE pools SET due_at = %s, updated_at = %s "
                  "WHERE aggregate_id IN (%s)")
_TEXT_POOL_REVIVE = "UPDATE pools SET state = %s WHERE aggregate_id IN (%s)"


def get_aggregate(aggregate_id):
    table = models.Aggregate.__table__
    rows = _rows(_statement("get_aggregate", lambda: sa.select(table).where(
        table.c.id == sa.bindparam("b_id"))), {"b_id": aggregate_id})
    return rows[0] if rows else None


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
    key a newer notification wins (see poolmgr.plan.desired). Aggregates gone
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
