"""One xapi pool, one aggregate: which managed aggregate owns a pool.

Nova lets a compute host be in several aggregates, so two flagged
aggregates may want hosts of the same xapi pool. The rule, which reads
desired and recorded state only and so never depends on timing or on the
order notifications arrive or passes run:

    A xapi pool (by uuid) belongs to the managed aggregate (flagged
    ``hypervisor_pool``, not deleted) with the lowest id among those that
    contest it: that recorded it as their pool (``pools.pool_uuid``), or
    whose desired hosts or recorded members include one of its hosts.

Nova never reuses aggregate ids, so of two aggregates the older one wins.
Every other aggregate leaves that pool alone: it does not adopt it, so it
never renames it, joins into it, ejects from it or hands its master role
over; each of its desired hosts in that pool is parked in ``error`` with
``OWNED_CODE``, a reason naming the owning aggregate, and the fix.
"""

import dataclasses

from poolmgr.db import api as db_api
from poolmgr import planner

OWNED_CODE = "POOL_OWNED_BY_OTHER_AGGREGATE"


@dataclasses.dataclass(frozen=True)
class Owner:
    aggregate_id: int
    name: str


def owner_of(aggregate_id, claimants):
    """The owner among ``claimants`` [(id, name)] and ``aggregate_id``."""
    names = dict(claimants)
    names.setdefault(aggregate_id, None)
    lowest = min(names)
    return Owner(lowest, names[lowest])


def rival_owner(desired, snapshot, known_hosts=()):
    """The other aggregate that owns the pool in ``snapshot``, or None.

    ``known_hosts``: compute hosts known to be in that pool (the one it was
    read through); the others are found by their recorded xenserver uuid.
    """
    uuids = [rec.get("uuid") for rec in snapshot.hosts.values()]
    hosts = set(db_api.compute_hosts_by_uuid(uuids).values())
    hosts.update(known_hosts)
    owner = owner_of(desired.aggregate_id,
                     db_api.pool_claimants(snapshot.uuid, hosts))
    return None if owner.aggregate_id == desired.aggregate_id else owner


def reason(host, desired, owner):
    """Why ``host`` is parked, naming the owner, and the way out."""
    return ("%s is in the xapi pool of aggregate %s (%s), which owns that "
            "pool (a xapi pool belongs to one aggregate: the flagged one with "
            "the lowest id that wants it); remove %s from aggregate %s (%s) "
            "or from aggregate %s, then run `poolmgr-manage pool retry %s %s`"
            % (host, owner.aggregate_id, owner.name, host,
               desired.aggregate_id, desired.name, owner.aggregate_id,
               desired.aggregate_id, host))


def owned_view(name, desired, owner, url=None, uuid=None):
    """The HostView of a desired host whose xapi pool another one owns."""
    return planner.HostView(
        name, planner.OWNED_ELSEWHERE, url=url, uuid=uuid,
        detail=reason(name, desired, owner), code=OWNED_CODE,
        params=("owned by aggregate %s (%s)" % (owner.aggregate_id,
                                                 owner.name),
                "fix: remove %s from aggregate %s (%s) or from aggregate %s, "
                "then `poolmgr-manage pool retry %s %s`" % (
                    name, desired.aggregate_id, desired.name,
                    owner.aggregate_id, desired.aggregate_id, name)))


def check_standalone(desired, view):
    """``view`` (STANDALONE: a master of its own pool) or an owned view.

    A desired host that masters a pool another aggregate owns must not be
    joined into this one: that would take the other aggregate's pool
    apart (or its only host).
    """
    if view.status != planner.STANDALONE or view.snapshot is None:
        return view
    owner = rival_owner(desired, view.snapshot, known_hosts=[view.name])
    if owner is None:
        return view
    return owned_view(view.name, desired, owner, url=view.url,
                      uuid=view.uuid)
