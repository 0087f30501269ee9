"""One pass over one leased pool: observe, plan, execute, until settled.

Level-triggered: each iteration reads desired state (MySQL) and observed
state (xapi), asks the pure planner what to do, and executes the plan up
to and including its first xapi mutation; then it observes again. A crash
anywhere is resumed by observing again, so a step that took effect is
never repeated (xapi lists a joined host on the master as soon as
pool.join returns).
"""

import time

from oslo_log import log as logging
import tenacity

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr.engine import observe
from poolmgr.engine import status
from poolmgr.engine import steps as step_handlers
from poolmgr import planner
from poolmgr.xenapi import errors

LOG = logging.getLogger(__name__)

# Steps that only write our own tables: the plan made from the same
# observation stays valid after them. After anything else, observe again.
CONTINUE_AFTER = frozenset([planner.PREFLIGHT, planner.BLOCKED,
                            planner.MARK_ACTIVE, planner.MARK_REMOVED,
                            planner.REFUSE_EJECT, planner.DISMISS])
# A plan loop that keeps finding work is cut after this many iterations.
MAX_ITERATIONS = 200


def run_pass(ctx):
    """The pass; returns a status.PassResult. Raises LeaseLost/Stopping."""
    agg = db_api.get_aggregate(ctx.aggregate_id)
    ctx.cause = (agg or {}).get("last_cause") or "resync"
    ctx.last_renew = time.monotonic()
    journal.abandon_stale(ctx)
    steps = []
    for _ in range(MAX_ITERATIONS):
        ctx.check_running()
        try:
            outcome, steps, observed, desired = _iterate_with_retry(ctx)
        except errors.XapiError as exc:
            # NOTE(park): permanent, or transient past max_attempts: the
            # member goes to error and the others go on; an error no
            # member owns puts the pool in error.
            if park(ctx, exc):
                continue
            return status.finish(ctx, None, None, [])
        except context.WaitTimeout as exc:
            LOG.warning("Pool %s: %s", ctx.aggregate_id, exc)
            status.count_attempt(ctx.aggregate_id, exc.host)
            return status.finish(ctx, desired=None, observed=None, steps=[
                planner.Step(planner.BLOCKED, exc.host, reason=str(exc))])
        if outcome == "acted":
            continue
        return status.finish(ctx, desired, observed, steps)
    return status.finish(ctx, None, None, steps)


def _iterate_with_retry(ctx):
    rc = ctx.conf.reconciler
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(errors.is_transient),
        wait=tenacity.wait_exponential(multiplier=rc.retry_initial_backoff,
                                       max=rc.retry_max_backoff),
        stop=tenacity.stop_after_attempt(rc.max_attempts),
        sleep=ctx.sleep,
        before_sleep=lambda state: LOG.warning(
            "Pool %s: transient xapi error, retrying: %s",
            ctx.aggregate_id, state.outcome.exception()),
        reraise=True)
    return retrying(_iterate, ctx)


def _iterate(ctx):
    """Observe, plan, execute up to the first mutation."""
    agg = db_api.get_aggregate(ctx.aggregate_id)
    desired = context.desired_of(agg)
    pool_row = db_api.get_pool(ctx.aggregate_id)
    members = {m["host"]: m for m in db_api.list_members(ctx.aggregate_id)}
    if desired is None or pool_row is None:
        return "done", [], planner.Observed(), desired
    if desired.managed:
        for host in desired.hosts:
            if host not in members:
                db_api.upsert_member(ctx.aggregate_id, host,
                                     state=db_api.MEMBER_PENDING)
                members[host] = {"state": db_api.MEMBER_PENDING,
                                 "attempts": 0}
    observed = observe.observe(ctx, desired, pool_row, members)
    steps = planner.plan_pool_changes(
        desired, observed, members, force=ctx.conf.xenserver.use_join_force)
    observe.record_observation(ctx, desired, pool_row, observed, steps)
    for step in steps:
        ctx.check_running()
        step_handlers.execute(ctx, step, observed)
        if step.kind not in CONTINUE_AFTER:
            # NOTE(replan): after a mutation the world changed; plan again
            # from fresh facts instead of trusting this plan.
            return "acted", steps, observed, desired
    return "done", steps, observed, desired


def park(ctx, exc):
    """A member in error (True), or the pool's own error (False)."""
    host = getattr(exc, "host", None)
    LOG.warning("Pool %s: %s%s", ctx.aggregate_id,
                ("%s parked in error: " % host) if host else "", exc)
    if host is not None:
        db_api.upsert_member(ctx.aggregate_id, host,
                             state=db_api.MEMBER_ERROR,
                             error_code=exc.code[:255],
                             error_params=exc.params)
        db_api.update_pool(ctx.aggregate_id, last_error_code=exc.code,
                           last_error=("%s: %s" % (host, exc))[:2000])
        return True
    ctx.pool_error = (exc.code, str(exc))
    db_api.update_pool(ctx.aggregate_id, last_error_code=exc.code,
                       last_error=str(exc)[:2000])
    return False
