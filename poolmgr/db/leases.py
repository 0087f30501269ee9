"""Pool leases, fenced by a generation bumped at every acquisition."""

import datetime

from oslo_db import api as oslo_db_api
import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _now
from poolmgr.db.session import _reader_connection as _reader
from poolmgr.db.session import _writer_connection as _writer


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
