"""Observation: what xapi says about a pool and its desired hosts.

The pool is read on its master (the recorded master first; sessions follow
HOST_IS_SLAVE to wherever the master went), every desired host that is not
a member is read on its own xapi (a pass stops at the first one it will
join, NOTE(lazy)); the result is a ``planner.Observed``.
"""

from poolmgr.plan import computevm
import threading

from poolmgr.db import api as db_api
from poolmgr.engine import ownership
from poolmgr.plan import planner
from poolmgr.plan import preflight
from poolmgr.xenapi import errors
from poolmgr.xenapi import operations
from poolmgr.xenapi import records


class _RivalMaster(Exception):
    """The recorded pool, adopted before its ownership was checked
    (NOTE(one-check)), is owned by another aggregate."""


def observe(ctx, desired, pool_row, members, record=True, lazy=False):
    """A planner.Observed of the pool; sets ctx.master_session/inventory.

    ``lazy`` (a pass, not a dry run): the desired hosts that are not
    members are read in the order the planner joins them, up to the first
    one it will join (see _until_joinable); the dry run reads them all.
    """
    if lazy and desired.managed:
        try:
            return _observe(ctx, desired, pool_row, members, record, lazy,
                            defer=True)
        except _RivalMaster:
            pass
    return _observe(ctx, desired, pool_row, members, record, lazy)


def _observe(ctx, desired, pool_row, members, record, lazy, defer=False):
    inventory = _inventory(ctx, set(desired.hosts) | set(members)
                           | {pool_row["master"]} - {None})
    ctx.inventory = inventory
    observed = planner.Observed()
    ctx.master_session = None
    deferred = None
    problems = []
    recorded = pool_row["master"]
    known_members = {h for h, m in members.items()
                     if m.get("state") == db_api.MEMBER_ACTIVE}
    contested = {}
    if desired.managed:
        candidates = planner.master_candidates(desired, recorded, members)
    else:
        # NOTE(dismiss): an unmanaged aggregate is only looked at through
        # the master we set up, never by adopting one of its hosts.
        candidates = [recorded] if recorded else []
    for name in candidates:
        host = inventory.get(name)
        if host is None:
            continue
        if recorded and problems and name != recorded \
                and name not in known_members:
            # NOTE(slow-master): the pool exists but its master (and
            # members) could not be read just now; a desired host that
            # is not a member yet must not found a second pool.
            continue
        sess = ctx.sessions.get(host["xapi_url"], follow_master=True)
        try:
            snap = read_master(ctx, sess)
        except errors.XapiError as exc:
            problems.append("%s: %s" % (name, exc))
            continue
        redirected = sess.url != host["xapi_url"]
        if redirected and name != recorded and name not in known_members:
            # A desired host that is a slave elsewhere does not make
            # that other pool ours.
            continue
        if defer and name == recorded and snap.uuid and \
                snap.uuid == pool_row["pool_uuid"]:
            # NOTE(one-check): the pool this aggregate recorded, seen on
            # its recorded master: its ownership is checked in the same
            # statement as the first standalone host's (_until_joinable),
            # one SELECT a join fewer; a rival owner (rare: another
            # aggregate now wants its hosts) starts the observation over
            # with the check first.
            deferred = (snap, [name])
            owner = None
        else:
            owner = (ownership.rival_owner(
                desired, snap, known_hosts=[name],
                known_uuids=ownership.known_uuids(inventory))
                if desired.managed else None)
        if owner is not None:
            # NOTE(ownership): another managed aggregate owns this pool;
            # adopting it would rename it, join into it, eject from it.
            contested[name] = ownership.owned_view(
                name, desired, owner, url=host["xapi_url"])
            continue
        observed.pool = snap
        ctx.master_session = sess
        ctx.master_url = host["xapi_url"]
        break
    if observed.pool is None and recorded and problems:
        observed.master_problem = "pool master unreachable (%s)" % (
            "; ".join(problems))
    if observed.pool is not None:
        _map_members(observed, desired, members, inventory, record)
        for view in observed.hosts.values():
            if view.url:
                # A member is read on the master: what followed it on its
                # own goes (NOTE(joined) in xenapi.session).
                if ctx.feeds is not None:
                    ctx.feeds.drop(standalone_key(view.url))
                ctx.sessions.drop(view.url, follow_master=False)
    if not desired.managed:
        return observed
    for name, view in contested.items():
        observed.hosts.setdefault(name, view)
    master_address = records.url_host(
        (inventory.get(recorded) or {}).get("xapi_url") or "") or None
    pending = [name for name in dict.fromkeys(desired.hosts)
               if name not in observed.hosts
               and (members.get(name) or {}).get("state")
               != db_api.MEMBER_ERROR]
    if lazy and observed.pool is not None:
        views = _until_joinable(ctx, desired, observed.pool, pending,
                                inventory, record, deferred)
    else:
        # NOTE(batch): every standalone host of the pass is read first,
        # then their ownership is checked in one go (three statements, not
        # three per host).
        views = ownership.check_standalones(desired, [
            observe_one(ctx, name, inventory, record) for name in pending],
            ownership.known_uuids(inventory))
    for view in views:
        name = view.name
        if view.status == planner.OTHER_POOL and observed.pool is None \
                and recorded and (name in known_members
                                  or view.detail == master_address):
            # Its master is ours and does not answer: it is not "a member
            # of another pool".
            view = planner.HostView(
                name, planner.MASTER_UNREACHABLE, url=view.url, detail=(
                    "%s is a member of this pool; its master %s (%s) does "
                    "not answer: poolmgr waits for it (if it is gone for "
                    "good, make a member master by hand: xe "
                    "pool-emergency-transition-to-master)" % (
                        name, recorded, view.detail)))
        observed.hosts[name] = view
    return computevm.annotate(observed, inventory,
                              ctx.conf.xenserver.eject_compute_vm)


def _inventory(ctx, names):
    """db_api.get_hosts(names), asking only for the hosts the pass did not
    read with its pool (NOTE(one-read) in db.passread)."""
    known, asked = ctx.hosts_read or ({}, frozenset())
    inventory = {name: dict(known[name]) for name in names if name in known}
    missing = set(names) - set(asked)
    if missing:
        inventory.update(db_api.get_hosts(missing))
    return inventory


def _until_joinable(ctx, desired, pool, pending, inventory, record,
                    deferred=None):
    """The views of ``pending`` hosts, read one after another up to the
    first that the planner will join now.

    NOTE(lazy): a pass ends at its first join (passes.CONTINUE_AFTER), and
    the planner joins the desired hosts in their order: a host behind the
    one joined now is not acted on in this pass, so reading it (once per
    pass: up to 15 reads a join in a 16-host build-out, each pass reading
    every host still waiting for its turn) told nothing the next pass would
    not read again. A host before it is read and planned as before: one
    that is unreachable, owned elsewhere, fails pre-flight or has a compute
    VM to stop first keeps the reading going. The stop mirrors
    planner.plan_pool_changes: standalone, no registered compute VM, no
    pre-flight failure.
    """
    force = ctx.conf.xenserver.use_join_force
    views = []
    also = [deferred] if deferred else []
    for name in pending:
        (view,), owners = ownership.check_with(
            desired, [observe_one(ctx, name, inventory, record)],
            ownership.known_uuids(inventory), also=also)
        _master_is_ours(owners)
        also = []
        views.append(view)
        if view.status == planner.STANDALONE and \
                not (inventory.get(name) or {}).get("compute_vm_uuid") and \
                not preflight.check_join(view.snapshot, pool, force=force):
            break
    if also:
        # No host to read: the master's deferred check alone.
        _master_is_ours(ownership.rival_owners(
            desired, also, ownership.known_uuids(inventory)))
    return views


def _master_is_ours(owners):
    """NOTE(one-check): raise _RivalMaster when the deferred check of the
    master (``owners``: its answer, or none) names another owner."""
    if owners and owners[0] is not None:
        raise _RivalMaster()


def read_master(ctx, session):
    """The whole pool, read on its master (a delta when it is followed)."""
    return ctx.read_master(session)


class FeedCache:
    """The event.from feed of every pool this engine looked at.

    Memory is bounded by the pools: one feed (records + token) per pool,
    dropped when the pool is dismissed or gone; and one per standalone host
    a pool wants (key ``standalone_key(url)``), dropped once the host is
    seen in the pool (its records are then in the pool's feed).
    """

    def __init__(self):
        self._feeds = {}
        self._lock = threading.Lock()

    def get(self, aggregate_id):
        with self._lock:
            feed = self._feeds.get(aggregate_id)
            if feed is None:
                feed = self._feeds[aggregate_id] = operations.PoolFeed()
            return feed

    def drop(self, aggregate_id):
        with self._lock:
            self._feeds.pop(aggregate_id, None)

    def __len__(self):
        with self._lock:
            return len(self._feeds)

    def stats(self):
        """{"pools", "standalone_hosts", "full_reads", "delta_reads"} over
        every feed."""
        with self._lock:
            feeds = list(self._feeds.items())
        standalone = sum(1 for key, _ in feeds if _is_standalone(key))
        return {"pools": len(feeds) - standalone,
                "standalone_hosts": standalone,
                "full_reads": sum(f.full_reads for _, f in feeds),
                "delta_reads": sum(f.delta_reads for _, f in feeds)}


def standalone_key(url):
    return ("standalone", url)


def _is_standalone(key):
    return isinstance(key, tuple) and key[:1] == ("standalone",)


def _map_members(observed, desired, members, inventory, record):
    names = list(dict.fromkeys(list(desired.hosts) + list(members)))
    mapped = set()
    snap = observed.pool
    for name in names:
        host = inventory.get(name)
        if host is None:
            continue
        ref = (snap.host_ref_by_uuid(host["xenserver_uuid"])
               or snap.host_ref_by_address(
                   records.url_host(host["xapi_url"])))
        if ref is None or ref in mapped:
            continue
        mapped.add(ref)
        rec = snap.hosts[ref]
        observed.hosts[name] = planner.HostView(
            name, planner.IN_POOL, url=host["xapi_url"],
            uuid=rec.get("uuid"), ref=ref)
        if ref == snap.master_ref:
            observed.master = name
        if record and host["xenserver_uuid"] != rec.get("uuid"):
            db_api.set_host_xenserver_uuid(name, rec.get("uuid"))
            # The row as written (ownership.known_uuids reads it).
            host["xenserver_uuid"] = rec.get("uuid")
    observed.unknown_members = [r for r in snap.hosts if r not in mapped]
    if observed.unknown_members:
        observed.unknown_names = registered_names(
            {r: snap.hosts[r] for r in observed.unknown_members})
    if observed.master is None:
        registered = observed.unknown_names.get(snap.master_ref)
        observed.master_problem = (
            "pool master %s is registered compute host %s, which is not in "
            "this aggregate" % (snap.master.get("address"), registered)
            if registered else
            "pool master %s is not a registered compute host" %
            snap.master.get("address"))
        observed.pool = None
        observed.hosts = {}


def registered_names(host_records):
    """{ref: compute host} of the xapi hosts that are registered hosts.

    By recorded xenserver uuid, else by the address in the xapi URL: a
    registered host is never called unregistered (rare: only for pool
    members that are not this aggregate's).
    """
    by_uuid = db_api.compute_hosts_by_uuid(
        rec.get("uuid") for rec in host_records.values())
    names = {ref: by_uuid[rec.get("uuid")]
             for ref, rec in host_records.items()
             if rec.get("uuid") in by_uuid}
    if len(names) < len(host_records):
        by_address = {records.url_host(h["xapi_url"]): h["compute_host"]
                      for h in db_api.list_hosts()}
        for ref, rec in host_records.items():
            if ref not in names and rec.get("address") in by_address:
                names[ref] = by_address[rec.get("address")]
    return names


def observe_one(ctx, name, inventory, record=True):
    """A desired host that is not a member, read on its own xapi."""
    host = inventory.get(name)
    if host is None:
        return planner.HostView(name, planner.UNREGISTERED)
    url = host["xapi_url"]
    sess = ctx.sessions.get(url, follow_master=False)
    try:
        # NOTE(delta): a host waiting for its turn to join is read again
        # at every pass of its pool; through its own event.from feed only
        # what changed travels (a full read after a restart: the session
        # is gone, SESSION_INVALID).
        snap = (ctx.feeds.get(standalone_key(url)).read(sess)
                if ctx.feeds is not None else operations.read_pool(sess))
    except errors.XapiError as exc:
        if exc.code == "HOST_IS_SLAVE":
            return planner.HostView(name, planner.OTHER_POOL, url=url,
                                    detail=(exc.params or ["?"])[0])
        return planner.HostView(name, planner.UNREACHABLE, url=url,
                                detail=str(exc), code=exc.code,
                                params=tuple(exc.params))
    uuid_ = snap.master_uuid
    if record and uuid_ and host["xenserver_uuid"] != uuid_:
        db_api.set_host_xenserver_uuid(name, uuid_)
        host["xenserver_uuid"] = uuid_
    return planner.HostView(name, planner.STANDALONE, url=url, uuid=uuid_,
                            snapshot=snap)


def record_observation(ctx, desired, pool_row, observed, steps):
    """Master, pool uuid and 'changing' written as soon as they are seen;
    True when something was written."""
    fields = {}
    claimed = False
    if observed.pool is not None:
        if pool_row["master"] != observed.master:
            fields["master"] = observed.master
        if pool_row["pool_uuid"] != observed.pool.uuid:
            # Observation adopted this pool only after ownership said it
            # is ours; claim_pool_uuid keeps the uuid unique.
            db_api.claim_pool_uuid(ctx.aggregate_id, observed.pool.uuid)
            claimed = True
        ha = records.as_bool(observed.pool.pool.get("ha_enabled"))
        if bool(pool_row.get("ha_enabled")) != ha:
            # NOTE(ha): kept for when the master is lost: its members
            # cannot be asked, and poolmgr never promotes in an HA pool.
            fields["ha_enabled"] = ha
    if desired.managed and pool_row["state"] in (
            db_api.POOL_CREATED, db_api.POOL_ACTIVE) and \
            any(s.mutating for s in steps):
        fields["state"] = db_api.POOL_CHANGING
    if fields:
        db_api.update_pool(ctx.aggregate_id, **fields)
    return claimed or bool(fields)
