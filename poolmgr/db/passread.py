"""What a pass reads before it looks or plans, in one SELECT."""

import dataclasses

import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _rows, _statement
from poolmgr.db.states import OP_STARTED

_POOLS = models.Pool.__table__
_AGGREGATES = models.Aggregate.__table__
_MEMBERS = models.PoolMember.__table__
_HOSTS = models.Host.__table__
_OPS = models.Operation.__table__
# Column labels: the four tables share names (id, state, created_at...).
_PREFIXES = ((_POOLS, "p_"), (_AGGREGATES, "a_"), (_MEMBERS, "m_"),
             (_HOSTS, "h_"))


@dataclasses.dataclass
class PassRead:
    pool: dict = None          # as get_pool, None when there is no pool
    aggregate: dict = None     # as get_aggregate
    unfinished: bool = False   # as get_aggregate_for_pass
    members: list = dataclasses.field(default_factory=list)  # list_members
    # {compute host: row} of the members' registered hosts (get_hosts),
    # and every member host asked about (registered or not).
    hosts: dict = dataclasses.field(default_factory=dict)
    looked_up: frozenset = frozenset()


def read_for_pass(aggregate_id):
    """The pool, its aggregate, its members and their hosts (PassRead).

    NOTE(one-read): get_pool, get_aggregate_for_pass, list_members and
    get_hosts were four SELECTs at every pass; joined here they are one.
    A member's host row comes with it (every desired host is a member
    after the first pass that sees it), so the pass asks get_hosts only
    for the hosts that are not members yet.
    """
    rows = _rows(_statement("read_for_pass", _read_for_pass),
                 {"b_id": aggregate_id})
    if not rows:
        return PassRead()
    first = rows[0]
    found = PassRead(pool=_part(first, _POOLS, "p_"))
    if first["a_id"] is not None:
        found.aggregate = _part(first, _AGGREGATES, "a_")
        found.unfinished = bool(first["unfinished_steps"])
    looked_up = set()
    for row in rows:
        if row["m_id"] is None:
            continue
        found.members.append(_part(row, _MEMBERS, "m_"))
        looked_up.add(row["m_host"])
        if row["h_compute_host"] is not None:
            found.hosts[row["h_compute_host"]] = _part(row, _HOSTS, "h_")
    found.looked_up = frozenset(looked_up)
    return found


def _part(row, table, prefix):
    return {column.name: row[prefix + column.name]
            for column in table.columns}


def _read_for_pass():
    started = sa.select(_OPS.c.id).where(
        _OPS.c.aggregate_id == _AGGREGATES.c.id,
        _OPS.c.status == OP_STARTED).exists()
    columns = [column.label(prefix + column.name)
               for table, prefix in _PREFIXES for column in table.columns]
    joined = _POOLS.outerjoin(
        _AGGREGATES, _AGGREGATES.c.id == _POOLS.c.aggregate_id).outerjoin(
        _MEMBERS, _MEMBERS.c.aggregate_id == _POOLS.c.aggregate_id).outerjoin(
        _HOSTS, _HOSTS.c.compute_host == _MEMBERS.c.host)
    return sa.select(*columns, started.label("unfinished_steps")).select_from(
        joined).where(_POOLS.c.aggregate_id == sa.bindparam("b_id")).order_by(
        _MEMBERS.c.id)
