"""poolmgr-manage host drain|undrain, pool rolling-reboot (issue 26).

Each command records a maintenance operation; the engine that holds the
pool's lease (the daemon's) carries it out phase by phase, journaled
(poolmgr/engine/maintenance.py). ``--wait`` follows it until it ends.
``host undrain`` runs the passes here, as ``pool sync --wait`` does.
"""

import time

from poolmgr.cmd.manage_common import (
    EXIT_OK, EXIT_FAILED, CommandError, find_aggregate)
from poolmgr.db import api as db_api

_POLL = 0.2
# Member states of a host poolmgr may drain (or undrain).
_DRAINABLE = (db_api.MEMBER_ACTIVE, db_api.MEMBER_DRAINING,
              db_api.MEMBER_DRAINED)


def _membership(host):
    """(aggregate id, member row) of the pool ``host`` is a member of."""
    rows = [m for m in db_api.list_all_members() if m["host"] == host
            and m["state"] != db_api.MEMBER_REMOVED]
    if not rows:
        raise CommandError("%s is not a member of any pool poolmgr manages"
                           % host)
    member = rows[0]
    if member["state"] not in _DRAINABLE:
        raise CommandError(
            "%s is %s in pool %s; only an active member can be drained "
            "(see 'poolmgr-manage pool show %s')" % (
                host, member["state"], member["aggregate_id"],
                member["aggregate_id"]))
    return member["aggregate_id"], member


def _start(aggregate_id, kind, hosts, current_host=None):
    from poolmgr.engine import maintenance
    try:
        op = db_api.start_maintenance(
            aggregate_id, kind, hosts, maintenance.first_phase(kind),
            current_host=current_host)
    except db_api.OperationRunning:
        # NOTE(race): one started between the check and this insert.
        _refuse_if_running(aggregate_id)
        raise CommandError("pool %s: another maintenance operation just "
                           "started and ended; try again" % aggregate_id)
    db_api.mark_due(aggregate_id)
    return op


def _follow(op_id):
    """Print each phase until the operation ends; its exit code."""
    from poolmgr.engine import maintenance
    seen = None
    while True:
        op = db_api.get_maintenance(op_id)
        now = (op["current_host"], op["phase"], op["status"])
        if now != seen:
            seen = now
            print(maintenance.describe(op), flush=True)
        if op["status"] != db_api.MAINT_RUNNING:
            return EXIT_OK if op["status"] == db_api.MAINT_SUCCEEDED \
                else EXIT_FAILED
        time.sleep(_POLL)


def _requested(op, what):
    print("%s requested (maintenance operation %s); the daemon carries it "
          "out: 'poolmgr-manage pool show %s' shows where it is" % (
              what, op["id"], op["aggregate_id"]))
    return EXIT_OK


def host_drain(conf, args):
    aggregate_id, member = _membership(args.host)
    _refuse_if_running(aggregate_id)
    if member["state"] == db_api.MEMBER_DRAINED:
        print("%s is drained already (pool %s)" % (args.host, aggregate_id))
        return EXIT_OK
    op = _start(aggregate_id, db_api.MAINT_DRAIN, [args.host],
                current_host=args.host)
    if not args.wait:
        return _requested(op, "drain of %s" % args.host)
    return _follow(op["id"])


def host_undrain(conf, args):
    from poolmgr import engine as pool_engine
    aggregate_id, _ = _membership(args.host)
    _refuse_if_running(aggregate_id)
    op = _start(aggregate_id, db_api.MAINT_UNDRAIN, [args.host],
                current_host=args.host)
    # NOTE(undrain-here): putting a host back needs no daemon: the passes
    # run here under the pool's lease (waiting for the daemon's, if it
    # holds it, which then does it itself).
    pool_engine.Engine(conf).reconcile_pool(aggregate_id)
    deadline = time.monotonic() + 2 * conf.reconciler.lease_time + 30
    while db_api.get_maintenance(op["id"])["status"] == \
            db_api.MAINT_RUNNING and time.monotonic() < deadline:
        time.sleep(_POLL)
    return _follow(op["id"])


def _refuse_if_running(aggregate_id):
    from poolmgr.engine import maintenance
    running = db_api.running_maintenance(aggregate_id)
    if running is not None:
        raise CommandError(
            "pool %s already runs a maintenance operation, one at a time: "
            "%s; wait for it to end ('poolmgr-manage pool show %s')" % (
                aggregate_id, maintenance.describe(running), aggregate_id))


def pool_rolling_reboot(conf, args):
    agg = find_aggregate(args.aggregate)
    _refuse_if_running(agg["id"])
    pool = db_api.get_pool(agg["id"])
    if pool is None or not pool.get("master"):
        raise CommandError("aggregate %s (%s) has no pool to reboot" % (
            agg["id"], agg["name"]))
    if pool["state"] != db_api.POOL_ACTIVE:
        raise CommandError(
            "pool %s is %s; a rolling reboot needs an active pool (see "
            "'poolmgr-manage pool show %s')" % (agg["id"], pool["state"],
                                                agg["id"]))
    members = {m["host"]: m for m in db_api.list_members(agg["id"])}
    held = sorted(h for h in agg["hosts"] if (members.get(h) or {}).get(
        "state") != db_api.MEMBER_ACTIVE)
    if held:
        raise CommandError(
            "pool %s: %s not active (drained or in error): undrain or "
            "repair first" % (agg["id"], ", ".join(held)))
    # The engine puts the master first, as xapi shows it (precheck).
    hosts = [pool["master"]] + [h for h in agg["hosts"]
                                if h != pool["master"]]
    op = _start(agg["id"], db_api.MAINT_ROLLING_REBOOT, hosts,
                current_host=hosts[0])
    if not args.wait:
        return _requested(op, "rolling reboot of pool %s" % agg["id"])
    return _follow(op["id"])
