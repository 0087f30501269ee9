"""One pass over one leased pool: look, observe, plan, one step, end.

Level-triggered: a pass reads desired state (MySQL) and observed state
(xapi), asks the pure planner what to do, and executes the plan up to and
including its first xapi mutation that changes membership or the master
(a join, an eject, a hand-over: CONTINUE_AFTER lists the others); then it
ends and the pool is due again when there is something to see. A crash
anywhere is resumed by observing again, so a step that took effect is
never repeated (xapi lists a joined host on the master as soon as
pool.join returns).

A pass never sleeps. It ends with a ``PassResult`` whose ``pending`` says
why the pool is due again and ``due_in`` when:

- ``act``: a step was taken (or a member parked): look again at once;
- ``wait``: a join, eject or hand-over is under way (``pools.waiting``):
  look again after ``[reconciler] wait_poll_interval`` (a join: at once,
  when look threads long-poll; see waits.first_look_in);
- ``retry``: a transient xapi error: look again after the backoff of the
  attempt (``pool_members.attempts`` of the host, else ``pools.attempts``);
- None: settled (converged, blocked, parked); the scheduler picks the
  resync interval or the backoff of the blocked attempts.
"""

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import canary
from poolmgr.engine import context
from poolmgr.engine import failover
from poolmgr.engine import journal
from poolmgr.engine import maintenance
from poolmgr.engine import observe
from poolmgr.engine import status
from poolmgr.engine import steps as step_handlers
from poolmgr.engine.steps import join as join_steps
from poolmgr.engine import waits
from poolmgr.plan import planner
from poolmgr.plan import failover as planner_failover
from poolmgr.xenapi import errors

LOG = logging.getLogger(__name__)

ACT = "act"
WAIT = "wait"
RETRY = "retry"
# Steps after which the plan made from the same observation stays valid:
# those that only write our own tables, and the xapi calls that change
# neither membership nor the master (the pool's name, a PBD of a member).
# After anything else (join, eject, hand-over, letting go of the pool) the
# pass ends and the next one plans from fresh facts.
CONTINUE_AFTER = frozenset([planner.PREFLIGHT, planner.BLOCKED,
                            planner.MARK_ACTIVE, planner.MARK_REMOVED,
                            planner.REFUSE_EJECT, planner.DISMISS,
                            planner.SET_NAME_LABEL, planner.PLUG_PBD,
                            planner.CREATE_PBD])
_WAIT_STEPS = frozenset([planner.WAIT_MEMBER, planner.WAIT_STANDALONE])


def _pending(ctx, pending, due_in, reasons=()):
    return status.PassResult(ctx.aggregate_id, False,
                             steps=ctx.steps_executed, reasons=list(reasons),
                             pending=pending, due_in=due_in)


def run_pass(ctx):
    """The pass; returns a status.PassResult. Raises LeaseLost/Stopping."""
    # NOTE(one-read): the pool, its aggregate, its members and their hosts
    # in one SELECT (db.passread), read before the look: what the look
    # waits on is xapi, and a change stored meanwhile marks the pool due
    # again (release_lease keeps that due time).
    read = db_api.read_for_pass(ctx.aggregate_id)
    pool_row = ctx.pool_row = read.pool
    entry = (pool_row or {}).get("waiting")
    if entry:
        # NOTE(look): a waiting pool's pass reads its rows (the one read
        # above) and the master (one event.from); the rest waits until
        # it is done.
        try:
            outcome = waits.look(ctx, pool_row, entry)
        except context.WaitTimeout as exc:
            waits.clear(ctx)
            return _timed_out(ctx, exc)
        if outcome != waits.DONE:
            return _pending(ctx, WAIT, outcome)
        waits.clear(ctx)
        pool_row["waiting"] = None
    try:
        # NOTE(no-read): the pool row says whether an operation runs; only
        # then is it read (a pass of a pool without one costs nothing more).
        operation = (pool_row or {}).get("maintenance_id") and \
            db_api.get_maintenance(pool_row["maintenance_id"])
        if operation and operation["status"] == db_api.MAINT_RUNNING:
            # NOTE(maintenance): while an operator's drain or rolling
            # reboot runs, it is the pool's only work; the planner (joins,
            # ejects, repairs) takes over again when it has ended.
            return _pending(ctx, *maintenance.run(ctx, pool_row, operation))
        return _act(ctx, pool_row, read, looked=bool(entry))
    except waits.Waiting as waiting:
        waits.record(ctx, waiting, (pool_row or {}).get("waiting"))
        return _pending(ctx, WAIT, waits.first_look_in(
            ctx.conf, waiting, since=ctx.stepped_at))
    except errors.XapiError as exc:
        return _failed(ctx, exc)


def _act(ctx, pool_row, read, looked=False):
    """Observe, plan, execute up to the first mutation or wait.

    ``read``: the pass's db_api.read_for_pass; ``looked``: a look at a wait
    came first (it may have written the members' errors).
    """
    agg, unfinished = read.aggregate, read.unfinished
    ctx.cause = (agg or {}).get("last_cause") or "resync"
    if unfinished:
        journal.abandon_stale(ctx)
    desired = context.desired_of(agg)
    rows = (db_api.list_members(ctx.aggregate_id) if ctx.members_written
            else read.members)
    members = {m["host"]: m for m in rows}
    if desired is None or pool_row is None:
        return status.finish(ctx, desired, planner.Observed(), [])
    new = []
    if desired.managed:
        new = [host for host in desired.hosts if host not in members]
        db_api.add_members(ctx.aggregate_id, new)
        for host in new:
            members[host] = {"state": db_api.MEMBER_PENDING, "attempts": 0}
    ctx.hosts_read = (read.hosts, read.looked_up)
    observed = observe.observe(ctx, desired, pool_row, members,
                               lazy=True)
    if desired.managed:
        lost = failover.consider(ctx, desired, pool_row, members, observed)
        if lost is not None:
            return lost
    steps = planner.plan_pool_changes(
        desired, observed, members, force=ctx.conf.xenserver.use_join_force)
    steps += planner_failover.fenced_steps(pool_row.get("failover"), members,
                                           desired.aggregate_id)
    wrote = observe.record_observation(ctx, desired, pool_row, observed,
                                       steps)
    if not (steps or new or wrote or looked or unfinished):
        # NOTE(settled-rows): nothing of the pool or its members was
        # written in this pass (no step, no new member, no observation, no
        # look): the pass's end writes its state from the rows it read
        # (status.finish), not from the same rows read again.
        ctx.settled_rows = (pool_row, rows)
    if any(s.kind == planner.JOIN for s in steps):
        # NOTE(members-write) in db.pools: the members written before the
        # join are written with its member, in one statement.
        ctx.member_writes = []
    try:
        return _execute(ctx, desired, observed, steps)
    finally:
        ctx.flush_members()


def _execute(ctx, desired, observed, steps):
    """The plan's steps up to the first mutation or wait, then the end."""
    for i, step in enumerate(steps):
        ctx.check_running()
        following = steps[i + 1] if i + 1 < len(steps) else None
        if join_steps.written_by_its_join(step, following):
            continue
        step_handlers.execute(ctx, step, observed)
        if step.kind in CONTINUE_AFTER:
            continue
        # NOTE(replan): after a mutation the world changed; the next pass
        # plans from fresh facts instead of trusting this plan. When the
        # plan's next step waits for this one (join -> live, eject ->
        # standalone), the wait is recorded now.
        if following is not None and following.kind in _WAIT_STEPS and \
                following.host == step.host:
            raise waits.Waiting(following.kind, following.host,
                                following.params.get("uuid"))
        return _pending(ctx, ACT, 0.0)
    if any(s.mutating for s in steps):
        # The pool changed in this pass (a name, a PBD): its state is
        # written from the next pass's observation, not from this one.
        return _pending(ctx, ACT, 0.0)
    ctx.flush_members()
    # NOTE(canary): a pool this pass leaves active is proven here, before
    # its status is written, so its readiness says what the proof found;
    # the pool row then changed, so its end is not written from the rows
    # the pass read (NOTE(settled-rows)).
    if canary.maybe_prove(ctx, desired, observed, steps) is not None:
        ctx.settled_rows = None
    return status.finish(ctx, desired, observed, steps)


def _timed_out(ctx, exc):
    LOG.warning("Pool %s: %s", ctx.aggregate_id, exc)
    status.count_attempt(ctx.aggregate_id, exc.host)
    return status.finish(ctx, desired=None, observed=None, steps=[
        planner.Step(planner.BLOCKED, exc.host, reason=str(exc))])


def _failed(ctx, exc):
    host = getattr(exc, "host", None)
    if exc.transient:
        attempts = status.count_attempt(ctx.aggregate_id, host) if host \
            else status.count_pool_attempt(ctx)
        if attempts < ctx.conf.reconciler.max_attempts:
            due_in = context.backoff(ctx.conf, attempts)
            LOG.warning("Pool %s: transient xapi error (attempt %d), again "
                        "in %.1f s: %s", ctx.aggregate_id, attempts, due_in,
                        exc)
            # NOTE(retry-reason): while the pool backs off, its reasons say
            # so (written with the lease's release), not what the pass
            # before the error said.
            ctx.release_fields["reasons"] = [
                "transient xapi error%s (attempt %d of %d), trying again in "
                "%.1f s: %s" % (" on %s" % host if host else "", attempts,
                                ctx.conf.reconciler.max_attempts, due_in,
                                exc)]
            return _pending(ctx, RETRY, due_in, reasons=[str(exc)])
    # NOTE(park): permanent, or transient past max_attempts: the member
    # goes to error and the others go on; an error no member owns puts the
    # pool in error.
    if park(ctx, exc):
        return _pending(ctx, ACT, 0.0)
    return status.finish(ctx, None, None, [])


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
