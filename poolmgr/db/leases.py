"""Pool leases, fenced by a generation bumped at every acquisition."""

import datetime

from oslo_db import api as oslo_db_api
import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _now, _statement, _at
from poolmgr.db.session import _reader_connection as _reader
from poolmgr.db.session import _writer_connection as _writer


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def acquire_lease(aggregate_id, owner, lease_time, expected=None):
    """Take the pool's lease; return the new fencing generation or None.

    A single conditional UPDATE decides the race: only one of several
    processes can move a free or expired lease to itself. Each acquisition
    bumps ``generation`` so a holder that lost its lease (paused, slow) can
    no longer pass ``check_lease``.

    ``expected``: the generation the caller read (list_due_pools, or the
    lease it just released); the UPDATE then also requires it, so the new
    generation is known without reading it back (one statement, not two),
    and a pool another engine took meanwhile is not acquired.
    """
    now = _now()
    params = {"b_aggregate_id": aggregate_id, "b_now": now,
              "b_owner": owner,
              "v_expires": now + datetime.timedelta(seconds=lease_time)}
    with _writer() as session:
        if expected is not None:
            params["b_generation"] = expected
            result = session.execute(_statement(
                "acquire_expected", lambda: _acquire(expected=True)), params)
            return expected + 1 if result.rowcount == 1 else None
        result = session.execute(_statement("acquire_lease", _acquire),
                                 params)
        if result.rowcount != 1:
            return None
        return session.scalar(_statement("generation", lambda: sa.select(
            _POOLS.c.generation).where(
            _POOLS.c.aggregate_id == sa.bindparam("b_aggregate_id"))),
            {"b_aggregate_id": aggregate_id})


_POOLS = models.Pool.__table__


def _acquire(expected=False):
    where = [_POOLS.c.aggregate_id == sa.bindparam("b_aggregate_id"),
             sa.or_(_POOLS.c.lease_owner.is_(None),
                    _POOLS.c.lease_expires_at < _at("b_now"),
                    _POOLS.c.lease_owner == sa.bindparam("b_owner"))]
    if expected:
        where.append(_POOLS.c.generation == sa.bindparam("b_generation"))
    return sa.update(_POOLS).where(*where).values(
        lease_owner=sa.bindparam("b_owner"),
        lease_expires_at=_at("v_expires"),
        generation=_POOLS.c.generation + 1)


def _held_by():
    return [_POOLS.c.aggregate_id == sa.bindparam("b_aggregate_id"),
            _POOLS.c.lease_owner == sa.bindparam("b_owner"),
            _POOLS.c.generation == sa.bindparam("b_generation")]


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def renew_lease(aggregate_id, owner, generation, lease_time, fields=None):
    """Extend a held lease; False when it was lost (expired and taken).

    ``fields``: other pool columns written in the same fenced UPDATE (the
    reason of a mutation about to be made), as release_lease's.
    """
    now = _now()
    names, extra, params = _extra(fields)
    params.update({"b_aggregate_id": aggregate_id, "b_owner": owner,
                   "b_generation": generation,
                   "v_expires": now + datetime.timedelta(seconds=lease_time)})
    with _writer() as session:
        result = session.execute(_statement(
            ("renew_lease",) + names, lambda: sa.update(_POOLS).where(
                *_held_by()).values(lease_expires_at=_at("v_expires"),
                                    **extra)), params)
        return result.rowcount == 1


def _extra(fields):
    """(names, SET values, params) of the other columns a lease's UPDATE
    writes; the names are part of the prebuilt statement's key."""
    fields = fields or {}
    names = tuple(sorted(fields))
    return (names, {name: sa.bindparam("x_" + name) for name in names},
            {"x_" + name: fields[name] for name in names})


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
                  marked_since=None, fields=None):
    """Give the lease back; optionally schedule the next pass.

    ``marked_since``: when the pass started. A pool marked due after that
    (a notification stored during the pass) keeps its earlier due time.
    ``fields``: other pool columns to write in the same UPDATE (the
    pass's wait); nothing is written when the lease is no longer ours.
    """
    kind = ("keep" if due_at is not None and marked_since is not None
            else "set" if due_at is not None else "none")
    names, extra, params = _extra(fields)

    def build():
        values = {"lease_owner": None, "lease_expires_at": None,
                  "updated_at": _at("v_now")}
        values.update(extra)
        if kind == "keep":
            # NOTE(wake-up): decided in the UPDATE itself, so a
            # notification stored between a read and this write cannot be
            # lost either.
            values["due_at"] = sa.case(
                (sa.and_(_POOLS.c.due_at.is_not(None),
                         _POOLS.c.due_at > _at("v_since"),
                         _POOLS.c.due_at < _at("v_due")),
                 _POOLS.c.due_at),
                else_=_at("v_due"))
        elif kind == "set":
            values["due_at"] = _at("v_due")
        return sa.update(_POOLS).where(*_held_by()).values(**values)

    params.update({"b_aggregate_id": aggregate_id, "b_owner": owner,
                   "b_generation": generation, "v_now": _now()})
    if kind != "none":
        params["v_due"] = due_at
    if kind == "keep":
        params["v_since"] = marked_since
    with _writer() as session:
        result = session.execute(_statement(
            ("release_lease", kind) + names, build), params)
        return result.rowcount == 1
