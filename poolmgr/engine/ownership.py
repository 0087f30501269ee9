"""One xapi pool, one aggregate: which managed aggregate owns a pool.

Nova lets a compute host be in several aggregates, so two flagged
aggregates may want hosts of the same xapi pool. The rule reads desired
state, recorded state and what xapi shows now, never timing or the order
notifications arrive in or passes run:

    A xapi pool (by uuid) belongs to the managed aggregate (flagged
    ``hypervisor_pool``, not deleted) with the lowest id among those that
    contest it and can hold it whole. An aggregate contests a pool when it
    recorded it as its pool (``pools.pool_uuid``) or when it wants one of
    its hosts (a desired host, or a recorded member); it can hold it whole
    when it wants every host of the pool that any contesting aggregate
    wants, so owning the pool never merges in a host another aggregate
    asked for. When no contestant can hold it whole, none owns it.

Nova never reuses aggregate ids, so of two aggregates the older one wins.
Every other aggregate leaves that pool alone: it does not adopt it, so it
never renames it, joins into it, ejects from it or hands its master role
over; each of its desired hosts in that pool is parked in ``error`` with
``OWNED_CODE``, a reason naming the owning aggregate (or the overlap when
none owns it), and the fix.
"""

import dataclasses

from poolmgr.db import api as db_api
from poolmgr.plan import planner
from poolmgr.xenapi import records

OWNED_CODE = "POOL_OWNED_BY_OTHER_AGGREGATE"


@dataclasses.dataclass(frozen=True)
class Owner:
    aggregate_id: int      # None: no contestant can hold the pool whole
    name: str
    overlap: tuple = ()    # (id, name) of the contestants, when none owns


def owner_of(aggregate_id, claimants):
    """The owner of a pool among ``claimants`` and ``aggregate_id``.

    ``claimants``: [(id, name, hosts of the pool it wants)], as
    db.api.pool_claimants returns them (``aggregate_id`` among them when it
    wants a host of the pool; an aggregate that wants none of them but
    recorded the pool contests it with an empty set).
    """
    entries = {c[0]: (c[1], frozenset(c[2])) for c in claimants}
    entries.setdefault(aggregate_id, (None, frozenset()))
    contested = frozenset().union(*(w for _, w in entries.values()))
    for candidate in sorted(entries):
        if contested <= entries[candidate][1]:
            return Owner(candidate, entries[candidate][0])
    return Owner(None, None, tuple((i, entries[i][0]) for i in sorted(
        entries) if entries[i][1]))


def _registered(snapshots, known_uuids=None):
    """Compute host names of each pool's hosts: by uuid, else by address.

    ``snapshots``: [(snapshot, known compute hosts in it)]; one statement
    for all of them (two when a host is found by address only), none when
    ``known_uuids`` ({xenserver uuid: compute host}, rows of the hosts
    table the caller read in this pass) names every host.
    """
    by_uuid = dict(known_uuids or {})
    unknown = {rec.get("uuid") for snap, _ in snapshots
               for rec in snap.hosts.values()} - set(by_uuid) - {None}
    if unknown:
        by_uuid.update(db_api.compute_hosts_by_uuid(unknown))
    listed = None
    result = []
    for snap, known_hosts in snapshots:
        names = {by_uuid[rec.get("uuid")] for rec in snap.hosts.values()
                 if rec.get("uuid") in by_uuid} | set(known_hosts)
        if len(names) < len(snap.hosts):
            if listed is None:
                listed = db_api.list_hosts()
            addresses = {rec.get("address") for rec in snap.hosts.values()}
            names.update(h["compute_host"] for h in listed
                         if records.url_host(h["xapi_url"]) in addresses)
        result.append(names)
    return result


def rival_owners(desired, snapshots, known_uuids=None):
    """rival_owner of each (snapshot, known_hosts) of ``snapshots``.

    Three statements whatever their number (engine/observe.py asks for
    every standalone host of a pass at once), two when ``known_uuids``
    (see _registered) names every host.
    """
    if not snapshots:
        return []
    names = _registered(snapshots, known_uuids)
    owners = [owner_of(desired.aggregate_id, claimants)
              for claimants in db_api.pool_claimants_many(
                  [(snap.uuid, hosts)
                   for (snap, _), hosts in zip(snapshots, names)])]
    return [None if owner.aggregate_id == desired.aggregate_id else owner
            for owner in owners]


def rival_owner(desired, snapshot, known_hosts=(), known_uuids=None):
    """The owner of the pool in ``snapshot`` when it is not ours, or None.

    ``known_hosts``: compute hosts known to be in that pool (the one it was
    read through); ``known_uuids``: see _registered.
    """
    return rival_owners(desired, [(snapshot, list(known_hosts))],
                        known_uuids)[0]


def _aggregate(aggregate_id, name):
    return "aggregate %s (%s)" % (aggregate_id, name)


def reason(host, desired, owner):
    """Why ``host`` is parked, naming the owner, and the way out."""
    if owner.aggregate_id is None:
        return ("%s is in a xapi pool whose hosts are wanted by %s: none of "
                "them wants all of its hosts, so none owns it and poolmgr "
                "changes nothing in it; make one aggregate hold every host "
                "of that pool (or remove the overlap), then run "
                "`poolmgr-manage pool retry %s %s`" % (
                    host, " and ".join(_aggregate(*c) for c in owner.overlap),
                    desired.aggregate_id, host))
    return ("%s is in the xapi pool of %s, which owns that pool (a xapi "
            "pool belongs to one aggregate: the flagged one with the lowest "
            "id that wants it, see 'One aggregate, one pool' in the docs); "
            "remove %s from %s or from aggregate %s, then run "
            "`poolmgr-manage pool retry %s %s`" % (
                host, _aggregate(owner.aggregate_id, owner.name), host,
                _aggregate(desired.aggregate_id, desired.name),
                owner.aggregate_id, desired.aggregate_id, host))


def owned_view(name, desired, owner, url=None, uuid=None):
    """The HostView of a desired host whose xapi pool another one owns."""
    return planner.HostView(
        name, planner.OWNED_ELSEWHERE, url=url, uuid=uuid,
        detail=reason(name, desired, owner), code=OWNED_CODE,
        params=(("owned by %s" % _aggregate(owner.aggregate_id, owner.name)
                 if owner.aggregate_id is not None else
                 "owned by none of %s" % ", ".join(
                     _aggregate(*c) for c in owner.overlap)),
                fix_of(name, desired, owner)))


def fix_of(name, desired, owner):
    """The way out for ``name``, parked with OWNED_CODE: one line."""
    retry = "then `poolmgr-manage pool retry %s %s`" % (
        desired.aggregate_id, name)
    if owner.aggregate_id is None:
        return ("fix: make one of %s hold every host of that pool (or "
                "remove the overlap), %s" % (" or ".join(
                    _aggregate(*c) for c in owner.overlap), retry))
    return "fix: remove %s from %s or from %s, %s" % (
        name, _aggregate(owner.aggregate_id, owner.name),
        _aggregate(desired.aggregate_id, desired.name), retry)


def known_uuids(inventory):
    """{xenserver uuid: compute host} of hosts-table rows (``inventory``:
    {compute host: row}, as db_api.get_hosts returns them)."""
    return {row["xenserver_uuid"]: name for name, row in inventory.items()
            if row.get("xenserver_uuid")}


def check_standalone(desired, view):
    """``view`` (STANDALONE: a master of its own pool) or an owned view.

    A desired host that masters a pool another aggregate owns must not be
    joined into this one: that would take the other aggregate's pool
    apart (or its only host).
    """
    return check_standalones(desired, [view])[0]


def check_standalones(desired, views, known_uuids=None):
    """check_standalone of each of ``views``, asking the database once."""
    return check_with(desired, views, known_uuids)[0]


def check_with(desired, views, known_uuids=None, also=()):
    """(check_standalones of ``views``, rival_owners of ``also``: more
    (snapshot, known_hosts) pools), asking the database once for all."""
    checked = [v for v in views
               if v.status == planner.STANDALONE and v.snapshot is not None]
    also = list(also)
    answers = rival_owners(desired, also + [
        (v.snapshot, [v.name]) for v in checked], known_uuids)
    owners = dict(zip((v.name for v in checked), answers[len(also):]))
    return [view if owners.get(view.name) is None else owned_view(
        view.name, desired, owners[view.name], url=view.url, uuid=view.uuid)
        for view in views], answers[:len(also)]
