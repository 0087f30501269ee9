"""Pools, their members, due times and ownership of xapi pools."""

import json
import types

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
    POOL_CHANGING, POOL_ERROR, MEMBER_PENDING, MEMBER_JOINING, MEMBER_ACTIVE,
    MEMBER_EJECTING, MEMBER_ERROR, MEMBER_FENCED, MEMBER_DRAINING,
    MEMBER_DRAINED)
from poolmgr.db.mirror import _is_pool


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

# Member states in which a host is (or is becoming) part of the xapi pool.
_IN_POOL_STATES = (MEMBER_JOINING, MEMBER_ACTIVE, MEMBER_EJECTING,
                   MEMBER_DRAINING, MEMBER_DRAINED)


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
    return pool_claimants_many([(pool_uuid, compute_hosts)])[0]


def pool_claimants_many(pools):
    """pool_claimants of each (pool_uuid, compute_hosts) of ``pools``.

    One statement whatever the number of pools (the engine asks for the
    master and every standalone host it observes in a pass): every
    candidate aggregate with its pool uuid and, joined, its recorded
    members among the hosts; each pool's answer is cut from them.
    """
    pools = [(uuid_, frozenset(h for h in hosts if h))
             for uuid_, hosts in pools]
    uuids = sorted(set(u for u, _ in pools if u))
    hosts = sorted(set().union(*(h for _, h in pools)))
    if not (uuids or hosts):
        return [[] for _ in pools]
    shape = (bool(uuids), len(hosts))
    params = {"b_like_%d" % i: _like_json_string(h)
              for i, h in enumerate(hosts)}
    params["b_hosts"] = hosts
    if uuids:
        params["b_uuids"] = uuids
    with _reader_connection() as session:
        rows = session.execute(_statement(
            ("claimants",) + shape, lambda: _claimants(*shape)),
            params).all()
    members = {}
    found = {}
    for agg_id, name, agg_hosts, metadata, deleted, uuid_, member in rows:
        if member is not None:
            members.setdefault(agg_id, set()).add(member)
        if agg_id not in found and _is_pool(types.SimpleNamespace(
                deleted=deleted, metadata_=metadata)):
            found[agg_id] = (agg_id, name, agg_hosts, uuid_)
    answers = []
    for pool_uuid, pool_hosts in pools:
        claimants = []
        for agg_id, name, agg_hosts, uuid_ in found.values():
            wanted = (set(agg_hosts or ()) & pool_hosts) | (
                members.get(agg_id, set()) & pool_hosts)
            if wanted or (pool_uuid and uuid_ == pool_uuid):
                claimants.append((agg_id, name, frozenset(wanted)))
        answers.append(sorted(claimants))
    return answers


def _claimants(uuids, hosts):
    """The SELECT of pool_claimants_many: the candidate aggregates, each
    row with one of its recorded members among the hosts (or NULL)."""
    aggregates = models.Aggregate.__table__
    member = sa.and_(_MEMBERS.c.aggregate_id == aggregates.c.id,
                     _MEMBERS.c.host.in_(sa.bindparam("b_hosts",
                                                      expanding=True)),
                     _MEMBERS.c.state.in_(_IN_POOL_STATES))
    found = [_MEMBERS.c.host.is_not(None)]
    if uuids:
        found.append(_POOLS.c.pool_uuid.in_(sa.bindparam(
            "b_uuids", expanding=True)))
    if hosts:
        # NOTE(like): a cheap filter on the JSON text; the match is
        # confirmed on the decoded list in pool_claimants_many.
        found.append(sa.and_(
            aggregates.c.deleted.is_(False),
            sa.or_(*[sa.type_coerce(aggregates.c.hosts, sa.Text).like(
                sa.bindparam("b_like_%d" % i, type_=sa.Text),
                escape="\\") for i in range(hosts)])))
    return sa.select(
        aggregates.c.id, aggregates.c.name, aggregates.c.hosts,
        aggregates.c["metadata"], aggregates.c.deleted,
        _POOLS.c.pool_uuid, _MEMBERS.c.host).select_from(aggregates).outerjoin(
        _POOLS, _POOLS.c.aggregate_id == aggregates.c.id).outerjoin(
        _MEMBERS, member).where(sa.or_(*found))


def compute_hosts_by_uuid(xenserver_uuids):
    """{xenserver uuid: compute host} for the registered ones."""
    uuids = sorted(set(u for u in xenserver_uuids if u))
    if not uuids:
        return {}
    hosts = models.Host.__table__
    with _reader_connection() as session:
        return {u: h for h, u in session.execute(_statement(
            "hosts_by_uuid", lambda: sa.select(
                hosts.c.compute_host, hosts.c.xenserver_uuid).where(
                hosts.c.xenserver_uuid.in_(sa.bindparam(
                    "b_uuids", expanding=True)))), {"b_uuids": uuids})}


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def claim_pool_uuid(aggregate_id, pool_uuid):
    """Record ``pool_uuid`` as this aggregate's pool (pools.pool_uuid).

    The caller decided it owns the pool (engine.ownership); a row of
    another aggregate that still names it (it lost the pool to this one)
    lets go of it in the same transaction, as the unique key requires.

    NOTE(gap-lock): the other rows are found with a plain read and let go
    of by primary key. An UPDATE ... WHERE pool_uuid = <new uuid> that
    matches nothing still locks the gap of the unique index where the
    uuid would go (REPEATABLE READ); two first passes recording their new
    pools at once each held that gap and waited for the other's: a
    deadlock, and oslo.db's retry one second later (measured: a pool of a
    10 x 16 build-out started 1 to 2 s after the others). A row that takes
    the uuid between the read and the write makes the write a duplicate;
    the next attempt reads it and lets go of it.
    """
    for attempt in (1, 2):
        now = _now()
        try:
            with _writer_connection() as session:
                holders = [row[0] for row in session.execute(
                    sa.select(_POOLS.c.aggregate_id).where(
                        _POOLS.c.pool_uuid == pool_uuid,
                        _POOLS.c.aggregate_id != aggregate_id))]
                if holders:
                    session.execute(sa.update(_POOLS).where(
                        _POOLS.c.aggregate_id.in_(holders),
                        _POOLS.c.pool_uuid == pool_uuid).values(
                        pool_uuid=None, updated_at=now))
                session.execute(sa.update(_POOLS).where(
                    _POOLS.c.aggregate_id == aggregate_id).values(
                    pool_uuid=pool_uuid, updated_at=now))
            return
        except db_exc.DBDuplicateEntry:
            if attempt == 2:
                raise


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
