"""Each pool's state, written back into its aggregate's metadata.

As Nova's XenAPI driver kept it (nova.md sections 2-5): ``operational_state``
(created, changing, active, error, dismissed), ``master_compute`` (the
master's compute host) and one ``<compute host>: <XenServer host uuid>`` key
per member in the xapi pool. Keys of hosts that left are removed; a
dismissed pool keeps only ``operational_state = dismissed``. poolmgr owns no
other key and never touches one (poolmgr.plan.desired.owned_keys).

Only changes are written: the wanted keys are compared with
``pools.reflected`` (what poolmgr last wrote), and a difference costs one
``set_metadata`` call. The ``update_metadata`` notifications those writes
cause change only poolmgr's own keys, which the intake stores without
marking the pool due (db.api), so a write never loops.
"""

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.plan import desired
from poolmgr.nova import client as nova

LOG = logging.getLogger(__name__)

_MEMBER_STATES = (db_api.MEMBER_ACTIVE, db_api.MEMBER_DRAINING,
                  db_api.MEMBER_DRAINED)


def wanted(pool, members):
    """The metadata keys poolmgr wants in the aggregate of ``pool``."""
    state = pool["state"]
    keys = {desired.OPERATIONAL_STATE: state}
    if state == db_api.POOL_DISMISSED:
        return keys
    if pool.get("master"):
        keys[desired.MASTER_COMPUTE] = pool["master"]
    for member in members:
        # NOTE(drained): a host drained for maintenance is still a member
        # (and comes back); its key stays.
        if member["state"] in _MEMBER_STATES and member.get(
                "xenserver_uuid"):
            keys[member["host"]] = member["xenserver_uuid"]
    return keys


def diff(previous, keys):
    """The set_metadata body turning ``previous`` into ``keys`` (None
    deletes), or {} when they agree."""
    changes = {k: v for k, v in keys.items() if previous.get(k) != v}
    changes.update({k: None for k in previous if k not in keys})
    return changes


def calls(previous, changes):
    """The set_metadata bodies that make ``changes``, in order.

    NOTE(order): Nova applies one call's deletions first, each in its own
    transaction, then its additions (nova/objects/aggregate.py,
    ``Aggregate.update_metadata``), so a reader in between sees the old
    state without the removed keys. A pool leaving ``active`` while a
    member leaves would read there as active without that member, while
    it is still being ejected. So a pool leaving ``active`` writes its new
    state first, in a call of its own, and the rest in a second one.
    """
    state = changes.get(desired.OPERATIONAL_STATE)
    if previous.get(desired.OPERATIONAL_STATE) != db_api.POOL_ACTIVE or \
            state in (None, db_api.POOL_ACTIVE) or len(changes) == 1:
        return [changes]
    return [{desired.OPERATIONAL_STATE: state},
            {k: v for k, v in changes.items()
             if k != desired.OPERATIONAL_STATE}]


def previous_keys(pool, agg):
    """What poolmgr's keys are in Nova now, as far as poolmgr knows."""
    if pool.get("reflected") is not None:
        return dict(pool["reflected"])
    # Never reflected (adopted, or written by Nova's old XenAPI driver):
    # start from the owned keys the mirror holds, so stale ones go.
    metadata = agg.get("metadata") or {}
    known = set(agg.get("host_stamps") or ()) | set(agg.get("hosts") or ())
    return {k: metadata[k] for k in desired.owned_keys(metadata, known)}


def pending():
    """[(aggregate_id, previous, wanted, changes)] for pools out of date."""
    members = {}
    for member in db_api.list_all_members():
        members.setdefault(member["aggregate_id"], []).append(member)
    aggs = {a["id"]: a for a in db_api.list_aggregates()}
    result = []
    for pool in db_api.list_pools():
        agg = aggs.get(pool["aggregate_id"])
        if agg is None or agg["deleted"]:
            continue
        keys = wanted(pool, members.get(pool["aggregate_id"], []))
        previous = previous_keys(pool, agg)
        changes = diff(previous, keys)
        if changes:
            result.append((pool["aggregate_id"], previous, keys, changes))
        elif pool.get("reflected") is None:
            db_api.set_reflected(pool["aggregate_id"], keys)
    return result


def reflect_all(client):
    """Write every out-of-date pool; returns (writes, failures)."""
    written = failed = 0
    for aggregate_id, previous, keys, changes in pending():
        reflected = dict(previous)
        try:
            for body in calls(previous, changes):
                client.update_metadata(aggregate_id, body)
                written += 1
                reflected.update(body)
                reflected = {k: v for k, v in reflected.items()
                             if v is not None}
        except nova.NovaNotFound:
            # Deleted in Nova meanwhile: nothing left to write into.
            db_api.set_reflected(aggregate_id, keys)
            continue
        except nova.NovaError as exc:
            if reflected != previous:
                # What the calls that went through wrote is in Nova.
                db_api.set_reflected(aggregate_id, reflected)
            if isinstance(exc, (nova.NovaUnauthorized, nova.NovaUnreachable)):
                raise
            LOG.warning("Could not reflect aggregate %s into Nova: %s",
                        aggregate_id, exc)
            failed += 1
            continue
        db_api.set_reflected(aggregate_id, keys)
        LOG.info("Reflected aggregate %s into Nova: %s", aggregate_id,
                 ", ".join("%s=%s" % (k, "(removed)" if v is None else v)
                           for k, v in sorted(changes.items())))
    return written, failed


def heal_from_listing(listing):
    """Trust Nova over ``pools.reflected`` after a listing.

    When the keys poolmgr owns differ in Nova from what it last wrote
    (edited by hand, a restored database), ``pools.reflected`` takes Nova's
    values, so the next reflection writes the difference back. Returns the
    aggregate ids healed.
    """
    pools = {p["aggregate_id"]: p for p in db_api.list_pools()}
    aggs = {a["id"]: a for a in db_api.list_aggregates()}
    healed = []
    for listed in listing.aggregates:
        pool = pools.get(listed["id"])
        if pool is None or pool.get("reflected") is None:
            continue
        known = (set((aggs.get(listed["id"]) or {}).get("host_stamps") or ())
                 | set(listed["hosts"]) | set(pool["reflected"]))
        metadata = listed["metadata"]
        seen = {k: metadata[k] for k in desired.owned_keys(metadata, known)}
        if seen != pool["reflected"]:
            db_api.set_reflected(listed["id"], seen)
            healed.append(listed["id"])
    return healed
