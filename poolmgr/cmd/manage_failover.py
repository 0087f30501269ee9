"""poolmgr-manage pool promote: a person's word that a lost master is off.

NOTE(request-row): the command does not call xapi itself. It records the
request in the pool's row (``pools.promote_request``) and marks the pool
due; the daemon's engine acts on it under the pool's lease, so the
promotion is journalled and fenced like every other mutation, a crash
between its two steps is resumed by the next holder, and two operators
(or an operator and the daemon) never promote twice. ``pool show``
shows where the promotion stands.
"""

from poolmgr.cmd.manage_common import CommandError, UsageError
from poolmgr.cmd.manage_common import find_aggregate
from poolmgr.db import api as db_api


def pool_promote(conf, args):
    if not args.confirm_master_fenced:
        raise UsageError(
            "pool promote needs --confirm-master-fenced: confirm that the "
            "lost master is powered off (two masters corrupt the pool)")
    agg = find_aggregate(args.aggregate)
    pool, members = db_api.pool_rows(agg["id"])
    if pool is None:
        raise CommandError("aggregate %s (%s) has no pool" % (
            agg["id"], agg["name"]))
    if pool["state"] != db_api.POOL_MASTER_LOST:
        raise CommandError(
            "pool of aggregate %s (%s) is %s, not %s: nothing to promote" % (
                agg["id"], agg["name"], pool["state"],
                db_api.POOL_MASTER_LOST))
    if pool.get("ha_enabled"):
        raise CommandError(
            "xapi HA is enabled on the pool of aggregate %s: HA elects its "
            "master; poolmgr does not promote" % agg["id"])
    lost = (pool.get("failover") or {}).get("master") or pool["master"]
    if args.host is not None:
        if args.host not in agg["hosts"]:
            raise CommandError("host %s is not in aggregate %s (%s); its "
                               "hosts: %s" % (args.host, agg["id"],
                                              agg["name"],
                                              ", ".join(agg["hosts"])))
        if args.host == lost:
            raise CommandError("host %s is the lost master itself" %
                               args.host)
    db_api.request_promotion(agg["id"], args.host)
    print("aggregate %s: promotion of %s requested (lost master %s); the "
          "daemon promotes it and verifies the members: poolmgr-manage pool "
          "show %s" % (agg["id"], args.host or "the first member that "
                       "answers", lost, agg["id"]))
