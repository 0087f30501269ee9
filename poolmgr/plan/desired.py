"""Pure: Nova's API listing and poolmgr's own metadata keys, as desired state.

The mirror (``aggregates``) folds every source through one last-writer-wins
merge (``db.api.merge_event``): each host and each metadata key keeps the
timestamp of the newest fact about it, with tombstones for removals.

How the sync and the notifications are ordered
----------------------------------------------
An API listing is folded as a full snapshot (like a versioned
notification) stamped with ``Listing.started_at``, the time poolmgr sent
``GET /os-aggregates``, before Nova read its database. So:

* a notification stamped before that time describes a change Nova had
  committed when it answered: the listing already contains it, and the
  listing wins over it, however late it is delivered;
* a notification stamped after it may describe a change the listing missed:
  its host or key keeps its newer stamp and the listing does not touch it
  (the sync never undoes a newer notification);
* an aggregate missing from the listing is deleted only when nothing about
  it is newer than the listing (one created meanwhile is kept).

This relies on nova-api's clock and poolmgr's agreeing (NTP), as every
OpenStack service does.

Host order: the newest full snapshot (the listing, or a versioned
notification) gives Nova's order, so the first host in Nova's list is the
master of a new pool whatever order the notifications came in.
"""

from poolmgr import events

# Metadata keys poolmgr writes into a pool's aggregate (reflect.py). Besides
# these, a key named after a compute host of the aggregate (present or gone)
# is poolmgr's: ``<compute host>: <XenServer host uuid>``.
OPERATIONAL_STATE = "operational_state"
MASTER_COMPUTE = "master_compute"
FIXED_KEYS = frozenset((OPERATIONAL_STATE, MASTER_COMPUTE))

ADOPTED = "adopted"      # a flagged aggregate poolmgr had never heard of
MIRRORED = "mirrored"    # an unflagged one, now known (no pool)
UPDATED = "updated"
DELETED = "deleted"


def owned_keys(metadata, known_hosts):
    """The keys of ``metadata`` that poolmgr owns."""
    return {k for k in metadata
            if k in FIXED_KEYS or k in known_hosts}


def significant(agg):
    """What of an aggregate row decides the pool's work.

    Metadata keys poolmgr writes itself are left out, so the
    ``update_metadata`` notifications its own writes cause neither mark
    the pool due nor loop.
    """
    if agg is None:
        return None
    known = set(agg.get("host_stamps") or ())
    metadata = agg.get("metadata") or {}
    return (agg.get("name"), tuple(agg.get("hosts") or ()),
            tuple(sorted((k, v) for k, v in metadata.items()
                         if k not in owned_keys(metadata, known))),
            bool(agg.get("deleted")))


def is_pool(agg):
    return bool(agg) and not agg.get("deleted") and events.POOL_FLAG in (
        agg.get("metadata") or {})


def snapshot_event(api_agg, started_at):
    """One listed aggregate as a versioned-style full snapshot."""
    return events.AggregateEvent(
        message_id="nova-sync-%s-%s" % (started_at.isoformat(),
                                        api_agg["id"]),
        event_type="aggregate.nova_sync.end", publisher_id="poolmgr-sync",
        timestamp=started_at, kind=events.UPDATE_METADATA,
        phase=events.END, versioned=True, aggregate_id=int(api_agg["id"]),
        uuid=api_agg.get("uuid"), name=api_agg.get("name"),
        hosts=tuple(api_agg.get("hosts") or ()),
        metadata=dict(api_agg.get("metadata") or {}))


def deletion_event(aggregate_id, started_at):
    return events.AggregateEvent(
        message_id="nova-sync-%s-%s-gone" % (started_at.isoformat(),
                                             aggregate_id),
        event_type="aggregate.nova_sync.end", publisher_id="poolmgr-sync",
        timestamp=started_at, kind=events.DELETE, phase=events.END,
        versioned=True, aggregate_id=int(aggregate_id))


def newer_than(agg, started_at):
    """True when the mirror knows something about ``agg`` after the listing
    started (then its absence from the listing proves nothing)."""
    # NOTE(clock): Nova's timestamps only, never poolmgr's own (created_at):
    # a notification stamped before the listing started is of a change Nova
    # had committed, so the listing would show the aggregate if it existed.
    last = agg.get("last_event_at")
    return last is not None and last >= started_at


def describe(before, after):
    """What the sync changed in one aggregate, for ``nova sync``'s output.

    ``before``/``after`` are row dicts (``before`` None for a new one).
    Returns None when nothing that matters changed.
    """
    if significant(before) == significant(after) and (
            before is None) == (after is None):
        return None
    change = {"aggregate_id": after["id"], "name": after.get("name")}
    if before is None:
        change["action"] = ADOPTED if is_pool(after) else MIRRORED
    elif after.get("deleted") and not before.get("deleted"):
        change["action"] = DELETED
    else:
        change["action"] = UPDATED
    old_hosts = list((before or {}).get("hosts") or [])
    new_hosts = list(after.get("hosts") or [])
    if after.get("deleted"):
        new_hosts = []
    added = [h for h in new_hosts if h not in old_hosts]
    removed = [h for h in old_hosts if h not in new_hosts]
    if added:
        change["hosts_added"] = added
    if removed:
        change["hosts_removed"] = removed
    if new_hosts and new_hosts != old_hosts and not added and not removed:
        change["host_order"] = new_hosts
    change["hosts"] = new_hosts
    old_meta = dict((before or {}).get("metadata") or {})
    new_meta = dict(after.get("metadata") or {})
    known = set(after.get("host_stamps") or ())
    owned = owned_keys(set(old_meta) | set(new_meta), known)
    set_keys = {k: v for k, v in new_meta.items()
                if k not in owned and old_meta.get(k) != v}
    gone = sorted(k for k in old_meta if k not in new_meta
                  and k not in owned)
    if set_keys:
        change["metadata_set"] = set_keys
    if gone:
        change["metadata_removed"] = gone
    if before is not None and before.get("name") != after.get("name"):
        change["renamed_from"] = before.get("name")
    change["pool"] = is_pool(after)
    return change
