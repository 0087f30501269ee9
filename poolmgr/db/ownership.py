"""Ownership of xapi pools: which managed aggregates contest a pool.

One xapi pool belongs to exactly one aggregate (ARCHITECTURE.md
"Guarantees"): these reads name the aggregates that recorded a pool or
want one of its hosts, and ``claim_pool_uuid`` keeps a pool's uuid on one
aggregate's row.
"""

import json
import types

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _now
from poolmgr.db.session import _reader_connection
from poolmgr.db.session import _writer_connection, _statement
from poolmgr.db.states import (
    MEMBER_JOINING, MEMBER_ACTIVE, MEMBER_EJECTING, MEMBER_DRAINING,
    MEMBER_DRAINED)
from poolmgr.db.mirror import _is_pool

_POOLS = models.Pool.__table__
_MEMBERS = models.PoolMember.__table__


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
