"""Pools, their members, due times, retry and promotion requests.

Which aggregate owns a xapi pool is :mod:`poolmgr.db.ownership`.
"""


from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql

from poolmgr.db import models
from poolmgr.db.session import NotFound, _writer, _reader, _now, _row_dict
from poolmgr.db.session import _reader_connection
from poolmgr.db.session import _writer_connection, _statement, _where
from poolmgr.db.session import _values, _rows, _at
from poolmgr.db.states import (
    POOL_CHANGING, POOL_ERROR, MEMBER_PENDING, MEMBER_ERROR, MEMBER_FENCED)


_POOLS = models.Pool.__table__
_MEMBERS = models.PoolMember.__table__


def get_pool(aggregate_id):
    rows = _rows(_statement("get_pool", lambda: sa.select(_POOLS).where(
        *_where(_POOLS, "aggregate_id"))), {"b_aggregate_id": aggregate_id})
    return rows[0] if rows else None


def list_pools():
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.Pool).order_by(models.Pool.aggregate_id))]


def update_pool(aggregate_id, **fields):
    fields["updated_at"] = _now()
    names = tuple(sorted(fields))
    params = {"v_" + k: v for k, v in fields.items()}
    params["b_aggregate_id"] = aggregate_id
    with _writer_connection() as session:
        session.execute(_statement(("update_pool",) + names, lambda: sa.update(
            _POOLS).where(*_where(_POOLS, "aggregate_id")).values(
            _values(names))), params)


def mark_due(aggregate_id, when=None):
    update_pool(aggregate_id, due_at=when or _now())


def list_due_pools(limit=100, now=None, waiting=False):
    """Ids of pools due for a pass whose lease is free or expired.

    ``waiting``: (id, True when the pool waits for a join, an eject or a
    hand-over, its lease generation) triples instead, for the scheduler's
    look threads (and acquire_lease's ``expected``).
    """
    now = now or _now()

    def build():
        pools = _POOLS
        columns = [pools.c.aggregate_id]
        if waiting:
            columns += [pools.c.waiting.is_not(None), pools.c.generation]
        return sa.select(*columns).where(
            pools.c.due_at.is_not(None),
            pools.c.due_at <= _at("b_now"),
            sa.or_(pools.c.lease_owner.is_(None),
                   pools.c.lease_expires_at < _at("b_now")),
        ).order_by(pools.c.due_at).limit(sa.bindparam("b_limit"))

    with _reader_connection() as session:
        rows = session.execute(_statement(("list_due_pools", bool(waiting)),
                                          build),
                               {"b_now": now, "b_limit": limit}).all()
    if waiting:
        return [(row[0], bool(row[1]), row[2]) for row in rows]
    return [row[0] for row in rows]


def next_due_time(now=None, later=False):
    """The earliest due time of a pool whose lease is free or expired.

    A leased pool is left out: its holder sets its next due time when it
    releases the lease (and wakes its own scheduler). ``later``: only
    pools due after ``now`` (the scheduler's next wake-up; the pools due
    already were claimed, or wait for a thread or for their pass to end,
    each of which wakes it).
    """
    now = now or _now()
    pools = _POOLS

    def build():
        stamp = _at("b_now")
        where = [pools.c.due_at.is_not(None),
                 sa.or_(pools.c.lease_owner.is_(None),
                        pools.c.lease_expires_at < stamp)]
        if later:
            where.append(pools.c.due_at > stamp)
        return sa.select(sa.func.min(pools.c.due_at)).where(*where)

    with _reader_connection() as session:
        return session.scalar(_statement(("next_due_time", later), build),
                              {"b_now": now})


def list_members(aggregate_id):
    return _rows(_statement("list_members", lambda: sa.select(
        _MEMBERS).where(*_where(_MEMBERS, "aggregate_id")).order_by(
        _MEMBERS.c.id)), {"b_aggregate_id": aggregate_id})


def list_all_members():
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.PoolMember).order_by(
                models.PoolMember.aggregate_id, models.PoolMember.id))]


def _update_member(aggregate_id, host, now, fields):
    """One UPDATE of the member's row; the number of rows it matched."""
    names = tuple(sorted(set(fields) | {"updated_at"}))
    params = {"v_" + k: v for k, v in fields.items()}
    params.update(v_updated_at=now, b_aggregate_id=aggregate_id, b_host=host)
    with _writer_connection() as connection:
        return connection.execute(_statement(
            ("upsert_member",) + names, lambda: sa.update(_MEMBERS).where(
                *_where(_MEMBERS, "aggregate_id", "host")).values(
                _values(names))), params).rowcount


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def upsert_member(aggregate_id, host, **fields):
    now = _now()
    # NOTE(one-statement): the row exists on nearly every call (the
    # engine's steps): one UPDATE, and the INSERT only when it did not.
    if _update_member(aggregate_id, host, now, fields):
        return
    values = {"state": MEMBER_PENDING, "attempts": 0}
    values.update(fields)
    try:
        with _writer_connection() as connection:
            connection.execute(_MEMBERS.insert().values(
                aggregate_id=aggregate_id, host=host, created_at=now,
                updated_at=now, **values))
    except db_exc.DBDuplicateEntry:
        # Inserted meanwhile (another engine, or the CLI): update it.
        _update_member(aggregate_id, host, now, fields)


def write_members(aggregate_id, writes):
    """upsert_member of each (host, fields) of ``writes``, in one UPDATE.

    NOTE(members-write): a pass that marks the member it joined last
    active and then joins the next one wrote two UPDATEs a few
    milliseconds apart; one UPDATE sets each row's columns by host (CASE),
    so a join writes its members in one statement. A row that is missing
    (deleted meanwhile) is written by upsert_member, which inserts it.
    """
    writes = list(writes)
    if len(writes) == 1:
        host, fields = writes[0]
        return upsert_member(aggregate_id, host, **fields)
    if not writes:
        return
    shape = tuple(tuple(sorted(fields)) for _, fields in writes)
    params = {"b_aggregate_id": aggregate_id, "v_updated_at": _now()}
    for i, (host, fields) in enumerate(writes):
        params["b_host_%d" % i] = host
        params.update(("v_%d_%s" % (i, name), value)
                      for name, value in fields.items())
    with _writer_connection() as connection:
        matched = connection.execute(_statement(
            ("write_members",) + shape, lambda: _write_members(shape)),
            params).rowcount
    if matched < len(writes):
        for host, fields in writes:
            upsert_member(aggregate_id, host, **fields)


def _write_members(shape):
    hosts = [sa.bindparam("b_host_%d" % i) for i in range(len(shape))]
    values = {"updated_at": sa.bindparam("v_updated_at")}
    for name in sorted(set().union(*shape)):
        column = _MEMBERS.c[name]
        values[name] = sa.case(*[
            (_MEMBERS.c.host == hosts[i],
             sa.bindparam("v_%d_%s" % (i, name), type_=column.type))
            for i, names in enumerate(shape) if name in names],
            else_=column)
    return sa.update(_MEMBERS).where(
        _MEMBERS.c.aggregate_id == sa.bindparam("b_aggregate_id"),
        _MEMBERS.c.host.in_(hosts)).values(**values)


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def add_members(aggregate_id, hosts):
    """A ``pending`` row for each of ``hosts`` (desired, not recorded):
    one statement for all of them; a row that exists already (written
    meanwhile) is left as it is."""
    if not hosts:
        return
    now = _now()
    rows = [{"aggregate_id": aggregate_id, "host": host,
             "state": MEMBER_PENDING, "attempts": 0, "created_at": now,
             "updated_at": now} for host in dict.fromkeys(hosts)]
    with _writer_connection() as connection:
        dialect = connection.dialect.name
        if dialect in ("mysql", "mariadb"):
            insert = sa_mysql.insert(_MEMBERS)
            statement = insert.on_duplicate_key_update(id=_MEMBERS.c.id)
        elif dialect == "sqlite":
            # NOTE(sqlite-dialect) in poolmgr.db.counters.
            from sqlalchemy.dialects import sqlite as sa_sqlite
            statement = sa_sqlite.insert(_MEMBERS).on_conflict_do_nothing(
                index_elements=["aggregate_id", "host"])
        else:
            for row in rows:
                try:
                    with connection.begin_nested():
                        connection.execute(_MEMBERS.insert().values(**row))
                except db_exc.DBDuplicateEntry:
                    pass
            return
        connection.execute(statement.values(rows))


def delete_member(aggregate_id, host):
    with _writer() as session:
        session.execute(sa.delete(models.PoolMember).where(
            models.PoolMember.aggregate_id == aggregate_id,
            models.PoolMember.host == host))


# ---------------------------------------------------------------------------
# Pool ownership (poolmgr/engine/ownership.py decides; these read and write)
# ---------------------------------------------------------------------------

def retry_pool(aggregate_id, host=None):
    """Clear errors so the engine tries again; returns members cleared."""
    now = _now()
    with _writer() as session:
        query = sa.update(models.PoolMember).where(
            models.PoolMember.aggregate_id == aggregate_id,
            # NOTE(fenced): a lost master replaced by a promotion is
            # re-admitted only by an operator's retry (after they made it
            # leave its stale pool), never by the engine on its own.
            models.PoolMember.state.in_((MEMBER_ERROR, MEMBER_FENCED)))
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


def request_promotion(aggregate_id, host=None):
    """Record an operator's ``pool promote`` for the engine; due now.

    Only the CLI writes ``promote_request``; the engine clears it when it
    acts on it (engine/failover.py), so a pass that read the pool row
    before the request cannot overwrite it with its own failover record.
    """
    now = _now()
    request = {"host": host, "at": now.isoformat()}
    with _writer() as session:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id).values(
            promote_request=request, due_at=now, updated_at=now))
    return request


def set_reflected(aggregate_id, reflected):
    """Record the metadata poolmgr last wrote into the aggregate."""
    with _writer() as session:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id == aggregate_id).values(
            reflected=reflected))
