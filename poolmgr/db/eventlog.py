"""The notification log: every message stored once, with its outcome."""

import datetime
import json
import uuid

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql

from poolmgr.db import models
from poolmgr.db.session import _writer, _reader, _now, _stamp, _row_dict, _clip
from poolmgr.db.session import _writer_connection
from poolmgr.db import sqltext
from poolmgr.db.states import (
    APPLIED, DUPLICATE, STALE, RECORDED, IGNORED, REJECTED)
from poolmgr.db.counters import (
    _SEP, NOTIFICATIONS, DUPLICATES, _MAX_LABEL, _counter, _bump, add_counters,
    counter_values)
from poolmgr.db.mirror import (
    merge_event, _significant, _touch_pools)
from poolmgr import events


def record_event(event):
    """Store one parsed notification; return its outcome.

    Deduplicates by message_id (delivery is at least once), folds the event
    into the aggregate mirror and marks the pool due for reconciliation.
    Raises oslo_db exceptions when the database is unavailable.
    """
    return record_events([event])[0]


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


# NOTE(core): the batch path reads and writes aggregates, notifications
# and counters with Core statements on plain rows: ORM objects per row
# (identity map, attribute events, a unit of work that splits an INSERT
# wherever a row has a NULL the others lack) cost more CPU than the
# database round trips. merge_event() works on either kind of object.
_AGGREGATES = models.Aggregate.__table__
_NOTIFICATIONS = models.Notification.__table__
# Column name -> attribute name of what merge_event() folds into.
_MIRROR_FIELDS = {c.name: "metadata_" if c.name == "metadata" else c.name
                  for c in _AGGREGATES.columns}
_WRITTEN = [name for name in _MIRROR_FIELDS
            if name not in ("id", "created_at", "api_synced_at")]


class _Mirror:
    """One aggregates row as plain attributes."""

    __slots__ = tuple(_MIRROR_FIELDS.values()) + ("new",)

    def __init__(self, values, new=False):
        for name, attr in _MIRROR_FIELDS.items():
            setattr(self, attr, values.get(name))
        self.new = new

    def row(self):
        return {name: getattr(self, attr)
                for name, attr in _MIRROR_FIELDS.items()}


def _load_mirrors(session, agg_ids, text=None):
    if not agg_ids:
        return {}
    # NOTE(locks): rows are locked in id order so that concurrent
    # batches touching the same aggregates queue instead of deadlocking.
    if text is not None:
        return text.mirrors(agg_ids)
    rows = session.execute(_LOAD, {"ids": agg_ids})
    return {row.id: _Mirror(row._mapping) for row in rows}


_LOAD = sa.select(_AGGREGATES).where(_AGGREGATES.c.id.in_(
    sa.bindparam("ids", expanding=True))).order_by(
    _AGGREGATES.c.id).with_for_update()


def _store_mirrors(session, aggs, text=None):
    new = [a.row() for a in aggs if a.new]
    old = [a.row() for a in aggs if not a.new]
    if text is not None:
        # NOTE(race): a plain INSERT, see below.
        text.insert(_AGGREGATES_INSERT, new)
        text.insert(_MYSQL_UPDATE, old)
        return
    if new:
        # NOTE(race): a plain INSERT, so an aggregate another intake
        # created meanwhile raises DBDuplicateEntry and the batch is
        # retried on its row instead of overwriting it.
        session.execute(_AGGREGATES_INSERT, new)
    if not old:
        return
    if _is_mysql(session):
        # NOTE(upsert): the rows exist and are locked (FOR UPDATE above),
        # so this is an UPDATE of all of them in one round trip.
        session.execute(_MYSQL_UPDATE, old)
        return
    session.execute(_UPDATE, [dict({n: r[n] for n in _WRITTEN}, _id=r["id"])
                              for r in old])


def _updates():
    mysql = sa_mysql.insert(_AGGREGATES)
    mysql = mysql.on_duplicate_key_update(
        {name: mysql.inserted[name] for name in _WRITTEN})
    other = _AGGREGATES.update().where(
        _AGGREGATES.c.id == sa.bindparam("_id")).values(
        {name: sa.bindparam(name) for name in _WRITTEN})
    return mysql, other


_AGGREGATES_INSERT = _AGGREGATES.insert()
_MYSQL_UPDATE, _UPDATE = _updates()
_LOG_COLUMNS = ("message_id", "event_type", "publisher_id", "aggregate_id",
                "outcome", "reason", "event_time", "received_at")
_LOG_INSERT = _NOTIFICATIONS.insert()
_SEEN = sa.select(_NOTIFICATIONS.c.message_id).where(
    _NOTIFICATIONS.c.message_id.in_(sa.bindparam("ids", expanding=True)))


class _SQLText(sqltext.SQLText):
    """The notification batch's statements as SQL text (NOTE(sql-text)
    in poolmgr.db.sqltext): its log rows, locking reads, seen ids."""

    def log_rows(self, rows):
        """The notification log's rows (tuples in _LOG_COLUMNS order)."""
        string, value = self.string, self.value
        # NOTE(repeats): a batch has a few event types, publishers and
        # outcomes, and one receive time.
        same = {}
        parts = []
        append = parts.append
        for (message_id, event_type, publisher_id, aggregate_id, outcome,
             reason, stamp, received_at) in rows:
            rest = (event_type, publisher_id, outcome, reason, received_at)
            text = same.get(rest)
            if text is None:
                text = same[rest] = ",".join([value(v) for v in rest])
            if type(stamp) is datetime.datetime and stamp.tzinfo is None:
                stamp = "'%s'" % stamp.isoformat(" ")
            else:
                stamp = value(stamp)
            append("(%s,%s,%s,%s)" % (
                string(message_id), stamp,
                aggregate_id if type(aggregate_id) is int
                else value(aggregate_id), text))
        self.execute(_TEXT_LOG_INSERT, parts)

    def mirrors(self, ids):
        """_load_mirrors(): the rows as the driver returns them, with
        what models.JSONEncoded and sa.Boolean make of them."""
        result = {}
        names = list(_MIRROR_FIELDS)
        for row in self.run(_TEXT_LOAD % self.id_list(ids)):
            values = dict(zip(names, row))
            for name in _MIRROR_JSON:
                if values[name] is not None:
                    values[name] = json.loads(values[name])
            for name in _MIRROR_BOOLEAN:
                if values[name] is not None:
                    values[name] = bool(values[name])
            result[values["id"]] = _Mirror(values)
        return result

    def seen(self, ids):
        """The message ids among ``ids`` already in the log."""
        if not ids:
            return set()
        string = self.string
        sql = "SELECT message_id FROM %s WHERE message_id IN (%s)" % (
            _NOTIFICATIONS.name, ",".join([string(i) for i in ids]))
        return {row[0] for row in self.run(sql)}


_TEXT_LOAD = "SELECT %s FROM %s WHERE id IN (%%s) ORDER BY id FOR UPDATE" % (
    ", ".join(_MIRROR_FIELDS), _AGGREGATES.name)
_MIRROR_JSON = [c.name for c in _AGGREGATES.columns
                if isinstance(c.type, models.JSONEncoded)]
_MIRROR_BOOLEAN = [c.name for c in _AGGREGATES.columns
                   if isinstance(c.type, sa.Boolean)]
_TEXT_LOG_INSERT = "INSERT INTO %s (%s) VALUES " % (
    _NOTIFICATIONS.name, ", ".join(
        _LOG_COLUMNS[:1] + _LOG_COLUMNS[6:7] + _LOG_COLUMNS[3:4]
        + _LOG_COLUMNS[1:3] + _LOG_COLUMNS[4:6] + _LOG_COLUMNS[7:]))


def _is_mysql(connection):
    return connection.dialect.name in ("mysql", "mariadb")


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def _record_events_once(batch):
    now = _now()
    outcomes = [None] * len(batch)
    with _writer_connection() as connection:
        text = _SQLText(connection) if _SQLText.usable(connection) else None
        ids = list({e.message_id for e in batch})
        if text is not None:
            seen = text.seen(ids)
        else:
            seen = set(connection.scalars(_SEEN, {"ids": ids}))
        fresh = []
        for index, event in enumerate(batch):
            if event.message_id in seen:
                outcomes[index] = DUPLICATE
            else:
                seen.add(event.message_id)
                fresh.append(index)
        aggs = _load_mirrors(connection, sorted(
            {batch[i].aggregate_id for i in fresh
             if batch[i].phase == events.END
             and batch[i].aggregate_id is not None}), text)
        rows, touched, significant = [], {}, {}
        for index in fresh:
            event = batch[index]
            outcome, reason = RECORDED, None
            if event.phase == events.END and event.aggregate_id is None:
                outcome, reason = IGNORED, "no aggregate id"
            elif event.phase == events.END:
                agg = aggs.get(event.aggregate_id)
                if agg is None:
                    agg = aggs[event.aggregate_id] = _Mirror(
                        _new_aggregate_values(event.aggregate_id, now),
                        new=True)
                previous_event_at = agg.last_event_at
                # NOTE(significant): what the previous event of the batch
                # left is what this one starts from.
                before = significant.get(agg.id)
                if before is None:
                    before = _significant(agg)
                changed = merge_event(agg, event)
                agg.updated_at = now
                if changed or previous_event_at is None or (
                        event.timestamp >= previous_event_at):
                    outcome = APPLIED
                else:
                    outcome = STALE
                if changed:
                    agg.last_cause = event.cause
                after = significant[agg.id] = _significant(agg)
                # NOTE(reflection): a change of poolmgr's own metadata keys
                # (the update_metadata its reflection caused) is stored but
                # gives the engine no work, so it cannot loop.
                if after != before:
                    touched[agg.id] = agg
            outcomes[index] = outcome
            rows.append((event.message_id, event.event_type,
                         event.publisher_id, event.aggregate_id, outcome,
                         reason, event.timestamp, now))
        _store_mirrors(connection, [aggs[i] for i in sorted(aggs)], text)
        _touch_pools(connection, touched, now, text)
        if text is not None:
            text.log_rows(rows)
        elif rows:
            connection.execute(_LOG_INSERT, [dict(zip(_LOG_COLUMNS, row))
                                             for row in rows])
        tally = {}
        for event, outcome in zip(batch, outcomes):
            key = (outcome, event.event_type)
            tally[key] = tally.get(key, 0) + 1
        counts = {}
        for (outcome, event_type), count in tally.items():
            name = (_counter(DUPLICATES, event_type)
                    if outcome == DUPLICATE else
                    _counter(NOTIFICATIONS, outcome, event_type))
            counts[name] = counts.get(name, 0) + count
        _bump(connection, counts, text)
    return outcomes


def _new_aggregate_values(aggregate_id, now):
    return {"id": aggregate_id, "hosts": [], "metadata": {},
            "host_stamps": {}, "meta_stamps": {}, "deleted": False,
            "created_at": now, "updated_at": now}


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
