"""poolmgr-manage pool: list, show, history, retry, plan, sync, prove."""

import sys

from poolmgr.cmd.manage_common import (
    EXIT_OK, EXIT_FAILED, CommandError, emit, find_aggregate)
from poolmgr.cmd import views
from poolmgr.db import api as db_api


def pool_list(conf, args):
    pools = views.all_pool_views(db_api.all_pool_rows(),
                                 db_api.latest_maintenance())
    emit(args, pools, lambda: views.pool_list_table(pools))


def pool_show(conf, args):
    agg = find_aggregate(args.aggregate)
    pool = views.pool_view(agg, *db_api.pool_rows(agg["id"]),
                           db_api.latest_maintenance([agg["id"]]).get(
                               agg["id"]))
    emit(args, pool, lambda: views.pool_show_text(pool))


def pool_history(conf, args):
    agg = find_aggregate(args.aggregate)
    ops = [views.operation_view(o) for o in
           db_api.list_operations(agg["id"], limit=args.limit)]
    emit(args, ops, lambda: views.history_table(ops))


def pool_retry(conf, args):
    agg = find_aggregate(args.aggregate)
    if args.host is not None:
        # A host that left the aggregate but is still a member (an eject
        # refused) can be retried too.
        members = {m["host"] for m in db_api.list_members(agg["id"])
                   if m["state"] != db_api.MEMBER_REMOVED}
        if args.host not in set(agg["hosts"]) | members:
            raise CommandError(
                "host %s is not in aggregate %s (%s) nor a member of its "
                "pool; aggregate hosts: %s; other members of its pool: %s" % (
                    args.host, agg["id"], agg["name"],
                    ", ".join(sorted(agg["hosts"])) or "none",
                    ", ".join(sorted(members - set(agg["hosts"])))
                    or "none"))
    try:
        cleared = db_api.retry_pool(agg["id"], args.host)
    except db_api.NotFound as exc:
        raise CommandError(str(exc))
    print("aggregate %s: %d member error(s) cleared; the engine will try "
          "again" % (agg["id"], cleared))


def pool_plan(conf, args):
    from poolmgr import engine as pool_engine
    agg = find_aggregate(args.aggregate)
    plan = pool_engine.Engine(conf).plan_pool(agg["id"])
    data = views.plan_view(plan)
    emit(args, data, lambda: views.plan_text(data))
    return EXIT_FAILED if data.get("failures") else EXIT_OK


def _progress_printer():
    journal = {}

    def progress(op):
        # The engine reports a step when it starts and when it ends; the
        # second report may carry only what changed.
        merged = dict(journal.get(op["id"], {}))
        merged.update({k: v for k, v in op.items() if v is not None})
        journal[op["id"]] = merged
        print(views.progress_line(merged), flush=True)
    return progress


def pool_sync(conf, args):
    from poolmgr import engine as pool_engine
    agg = find_aggregate(args.aggregate)
    engine = pool_engine.Engine(conf)
    db_api.mark_due(agg["id"])
    if not args.wait:
        print("aggregate %s marked for reconciliation" % agg["id"])
        return EXIT_OK
    result = engine.reconcile_pool(agg["id"], progress=_progress_printer())
    agg = db_api.find_aggregate(agg["id"])
    pool = views.pool_view(agg, *db_api.pool_rows(agg["id"]))
    print(views.pool_show_text(pool))
    # A member parked in error is not converged, whatever the pass says.
    failed = [m for m in pool["members"] if m["state"] == db_api.MEMBER_ERROR]
    if failed or not result.converged:
        print("aggregate %s did not converge%s" % (agg["id"], "".join(
            "; %s: %s" % (m["host"], m["error_code"]) for m in failed)),
            file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def pool_prove(conf, args):
    """NOTE(prove-here): the proof runs in this process under the pool's
    lease, as ``pool sync --wait`` runs its passes: the operator sees each
    hop as it happens and the exit code says how it ended, with or without
    a daemon running (a daemon holding the lease is waited for)."""
    from poolmgr import engine as pool_engine
    agg = find_aggregate(args.aggregate)

    record, message = pool_engine.Engine(conf).prove_pool(
        agg["id"], progress=None if args.format == "json"
        else _progress_printer())
    agg = db_api.find_aggregate(agg["id"])
    pool = views.pool_view(agg, *db_api.pool_rows(agg["id"]))
    if record is None:
        raise CommandError("aggregate %s: not proven: %s" % (agg["id"],
                                                            message))
    emit(args, pool, lambda: views.pool_show_text(pool))
    return EXIT_OK if record["status"] == "proven" else EXIT_FAILED
