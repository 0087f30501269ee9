"""Retention: old notification-log and journal rows, deleted in batches.

``poolmgr-manage db purge --older-than DAYS`` and the daemon's purge
service (``[database] notification_ttl``, ``journal_ttl``, as aodh's
expirer) both come here. Each batch is its own short transaction that
deletes rows by primary key, so a purge of millions of rows never holds a
lock for long and the intake and the engine keep running beside it.

What the engine still needs is kept: journal rows still ``started`` (a
step in flight, or one a crash left open for the next lease holder to
close), and the newest journal row of every pool. The newest notification
row is kept too, so ``status`` still knows when the last one came. The
totals in ``counters`` are never touched: Prometheus ``_total`` families
do not go backwards.

NOTE(dedup): message ids are deduplicated against the log, so a copy of a
purged notification redelivered later is stored again. That is harmless:
the mirror keeps the newest timestamp per host and per metadata key, so an
old notification folds in as stale.
"""

import datetime

from oslo_log import log as logging
from oslo_utils import timeutils
import sqlalchemy as sa

from poolmgr.db import api as db_api
from poolmgr.db import models

LOG = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000

_notes = models.Notification.__table__
_ops = models.Operation.__table__


def cutoff(days, now=None):
    """The instant ``days`` days ago (naive UTC, as the tables store it)."""
    return (now or timeutils.utcnow()) - datetime.timedelta(days=days)


def _time(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _delete_in_batches(engine, table, candidates, keep, batch_size,
                       dry_run, still_deletable=None, stop=None):
    """Delete the ids ``candidates`` selects, ``batch_size`` at a time.

    ``candidates(after_id, limit)`` is a SELECT of ids above ``after_id``
    in id order. Returns (rows deleted or to delete, batches). A set
    ``stop`` event ends it between two batches.
    """
    done = batches = 0
    after = 0
    while stop is None or not stop.is_set():
        with engine.connect() as conn:
            ids = list(conn.execute(candidates(after, batch_size)).scalars())
        if not ids:
            break
        after = ids[-1]
        ids = [i for i in ids if i not in keep]
        if not ids:
            continue
        batches += 1
        if dry_run:
            done += len(ids)
            continue
        where = [table.c.id.in_(ids)]
        if still_deletable is not None:
            # NOTE(recheck): a row may have changed since it was selected
            # (outside the transaction); the DELETE tests it again.
            where.append(still_deletable)
        with engine.begin() as conn:
            done += conn.execute(sa.delete(table).where(*where)).rowcount
    return done, batches


def purge_notifications(older_than, batch_size=DEFAULT_BATCH_SIZE,
                        dry_run=False, stop=None):
    """Delete notification-log rows received before ``older_than``."""
    engine = db_api.get_engine()
    with engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(_notes.c.id))).scalar()
        newest_is_old = newest is not None and conn.execute(
            sa.select(_notes.c.received_at).where(
                _notes.c.id == newest)).scalar() < older_than
    keep = {newest} if newest is not None else set()

    def candidates(after, limit):
        return sa.select(_notes.c.id).where(
            _notes.c.id > after,
            _notes.c.received_at < older_than).order_by(
            _notes.c.id).limit(limit)

    done, batches = _delete_in_batches(engine, _notes, candidates, keep,
                                       batch_size, dry_run, stop=stop)
    return {"older_than": _time(older_than),
            ("would_delete" if dry_run else "deleted"): done,
            "batches": batches, "kept_newest": int(newest_is_old)}


def purge_journal(older_than, batch_size=DEFAULT_BATCH_SIZE, dry_run=False,
                  stop=None):
    """Delete finished journal rows older than ``older_than``.

    A row still ``started`` is never deleted, nor the newest row of a
    pool, however old.
    """
    engine = db_api.get_engine()
    old_finished = [_ops.c.started_at < older_than,
                    _ops.c.status != db_api.OP_STARTED,
                    _ops.c.finished_at.is_not(None),
                    _ops.c.finished_at < older_than]
    with engine.connect() as conn:
        newest = set(conn.execute(sa.select(sa.func.max(_ops.c.id)).group_by(
            _ops.c.aggregate_id)).scalars())
        kept_open = conn.execute(sa.select(sa.func.count()).where(
            _ops.c.started_at < older_than,
            _ops.c.status == db_api.OP_STARTED)).scalar()
        kept_newest = conn.execute(sa.select(sa.func.count()).where(
            _ops.c.id.in_(newest), *old_finished)).scalar() if newest else 0

    def candidates(after, limit):
        return sa.select(_ops.c.id).where(
            _ops.c.id > after, *old_finished).order_by(_ops.c.id).limit(limit)

    done, batches = _delete_in_batches(
        engine, _ops, candidates, newest, batch_size, dry_run,
        still_deletable=_ops.c.status != db_api.OP_STARTED, stop=stop)
    return {"older_than": _time(older_than),
            ("would_delete" if dry_run else "deleted"): done,
            "batches": batches, "kept_open": kept_open,
            "kept_newest_per_pool": kept_newest}


def purge(notification_days=None, journal_days=None,
          batch_size=DEFAULT_BATCH_SIZE, dry_run=False, now=None, stop=None):
    """Purge what is older than the given ages (None or 0: keep all).

    Returns the report ``db purge`` prints: one entry per table purged.
    """
    report = {"dry_run": dry_run, "batch_size": batch_size}
    if notification_days:
        report["notifications"] = purge_notifications(
            cutoff(notification_days, now), batch_size, dry_run, stop)
    if journal_days:
        report["operations"] = purge_journal(
            cutoff(journal_days, now), batch_size, dry_run, stop)
    return report


def purge_expired(conf, stop=None):
    """The daemon's periodic purge, from ``[database]`` ttl options."""
    report = purge(notification_days=conf.database.notification_ttl,
                   journal_days=conf.database.journal_ttl,
                   batch_size=conf.database.purge_batch_size, stop=stop)
    for table in ("notifications", "operations"):
        if report.get(table, {}).get("deleted"):
            LOG.info("Purged %d %s rows older than %s in %d batches",
                     report[table]["deleted"], table,
                     report[table]["older_than"], report[table]["batches"])
    return report
