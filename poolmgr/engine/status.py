"""The end of a pass: the pool's state, reasons and readiness, written."""

import dataclasses

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.plan import planner
from poolmgr.plan import proof
from poolmgr.plan import readiness

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class PassResult:
    aggregate_id: int
    converged: bool
    state: str = None
    steps: int = 0
    reasons: list = dataclasses.field(default_factory=list)
    error: str = None
    # Why the pool is due again, and in how many seconds (engine.passes):
    # "act", "wait", "retry", or None when the pass settled it.
    pending: str = None
    due_in: float = None


def count_attempt(aggregate_id, host):
    """One more failed attempt of the member; returns the new count."""
    if host is None:
        return 0
    for member in db_api.list_members(aggregate_id):
        if member["host"] == host:
            attempts = member["attempts"] + 1
            db_api.upsert_member(aggregate_id, host, attempts=attempts)
            return attempts
    return 1


def count_pool_attempt(ctx):
    """One more failed attempt no member owns (pools.attempts)."""
    row = db_api.get_pool(ctx.aggregate_id) or {}
    attempts = (row.get("attempts") or 0) + 1
    db_api.update_pool(ctx.aggregate_id, attempts=attempts)
    return attempts


# NOTE(drained): a drained (or draining) member is still a member of the
# pool, so the pool is active; it is disabled, so readiness says "not
# ready" and names it ("X is disabled"), and the reasons say why and how
# it comes back (_maintenance_reasons).
_MEMBER_OF_ACTIVE_POOL = (db_api.MEMBER_ACTIVE, db_api.MEMBER_DRAINED,
                          db_api.MEMBER_DRAINING)


def _maintenance_reasons(ctx, members):
    held = [m["host"] for m in members if m["state"] in (
        db_api.MEMBER_DRAINED, db_api.MEMBER_DRAINING)]
    if not held:
        return []
    last = db_api.latest_maintenance([ctx.aggregate_id]).get(
        ctx.aggregate_id)
    reasons = []
    if last is not None and last["status"] == db_api.MAINT_FAILED and \
            last.get("reason"):
        reasons.append(last["reason"])
    for host in held:
        reasons.append("%s is %s for maintenance (disabled): "
                       "'poolmgr-manage host undrain %s' puts it back in "
                       "service" % (host, next(
                           m["state"] for m in members
                           if m["host"] == host), host))
    return reasons


def finish(ctx, desired, observed, steps):
    """Write the pool's state from the last plan; return a PassResult."""
    blocked = [s for s in steps if s.kind == planner.BLOCKED]
    for step in blocked:
        count_attempt(ctx.aggregate_id, step.host)
    settled = None if blocked else ctx.settled_rows
    pool_row = (settled[0] if settled is not None
                else db_api.get_pool(ctx.aggregate_id))
    if pool_row is None or pool_row["state"] == db_api.POOL_DISMISSED:
        if ctx.feeds is not None:
            ctx.feeds.drop(ctx.aggregate_id)
    if pool_row is None:
        return PassResult(ctx.aggregate_id, True, steps=ctx.steps_executed)
    if pool_row["state"] == db_api.POOL_DISMISSED:
        return PassResult(ctx.aggregate_id, True, state=db_api.POOL_DISMISSED,
                          steps=ctx.steps_executed,
                          reasons=pool_row["reasons"])
    members = (settled[1] if settled is not None
               else db_api.list_members(ctx.aggregate_id))
    converged = not blocked and desired is not None
    fields = {"last_reconciled_at": context.now()}
    if any(s.host is None for s in blocked) or ctx.pool_error is not None:
        # NOTE(backoff): a blocked step no member owns (an unknown member,
        # an unreachable master) backs off on the pool's own count.
        fields["attempts"] = (pool_row.get("attempts") or 0) + 1
    elif converged and pool_row.get("attempts"):
        fields["attempts"] = 0
    reasons = [s.reason for s in blocked]
    if observed is not None and observed.pool is not None:
        names = observed.names_by_ref()
        expected = [h for h in desired.hosts
                    if h not in observed.hosts
                    or observed.hosts[h].status != planner.IN_POOL]
        result = readiness.assess(observed.pool, names=names,
                                  expected=expected)
        ready, ready_reasons = result.ready, result.reasons
        if ctx.conf.xenserver.canary_vm_template:
            ready, ready_reasons = proof.judge(
                ctx.release_fields.get("canary_proof",
                                       pool_row.get("canary_proof")),
                proof.membership(observed.pool), ready, ready_reasons)
        fields.update(live_migration_ready=ready, sr_matrix=result.matrix)
        reasons = ready_reasons + [r for r in reasons
                                   if r not in ready_reasons]
        state = db_api.POOL_ACTIVE if converged else db_api.POOL_CHANGING
    else:
        fields.update(live_migration_ready=False, sr_matrix=None)
        if desired is not None and not desired.hosts:
            reasons = reasons or ["the aggregate has no hosts"]
            state = db_api.POOL_CREATED
        else:
            reasons = reasons or ["no pool master reachable"]
            state = (db_api.POOL_CHANGING
                     if pool_row["state"] != db_api.POOL_CREATED or
                     ctx.steps_executed else db_api.POOL_CREATED)
    by_host = {m["host"]: m for m in members}
    if ctx.pool_error is not None or any(
            m["state"] == db_api.MEMBER_ERROR for m in members):
        # NOTE(truth): a desired host that cannot join (or a member that
        # cannot leave) puts the pool in error, as Nova's driver set
        # operational_state = error when an add failed.
        state = db_api.POOL_ERROR
    elif state == db_api.POOL_ACTIVE and desired is not None and not all(
            (by_host.get(h) or {}).get("state") in _MEMBER_OF_ACTIVE_POOL
            for h in desired.hosts):
        # Active means every desired host is an active member.
        state = db_api.POOL_CHANGING
    reasons += _maintenance_reasons(ctx, members)
    for member in members:
        if member["state"] == db_api.MEMBER_ERROR:
            reasons.append("%s in error: %s %s" % (
                member["host"], member["error_code"],
                " ".join(member["error_params"] or [])))
    if not any(m["state"] == db_api.MEMBER_ERROR for m in members) and \
            ctx.pool_error is None and converged:
        fields.update(last_error=None, last_error_code=None)
    fields["state"] = state
    fields["reasons"] = reasons
    # NOTE(release-write): the pass ends here; its state is written by
    # the UPDATE that releases the lease (engine.waits), fenced like it: a
    # pass that lost its lease writes no state it may no longer know.
    ctx.release_fields.update(fields)
    LOG.info("Pool %s: pass done, state %s, %d step(s), %s",
             ctx.aggregate_id, state, ctx.steps_executed,
             "converged" if converged else "not converged")
    if converged:
        due_in = ctx.conf.reconciler.resync_interval
        if observed is not None and observed.pool is not None and \
                ctx.conf.xenserver.master_dead_after > 0:
            # NOTE(master-watch): a converged pool is looked at again at
            # least every master_dead_after seconds, so a master that dies
            # in a quiet pool is master_lost within about twice that (one
            # look sees it silent, master_dead_after later it is lost), not
            # a resync_interval later. The look is one event.from delta.
            due_in = min(due_in, ctx.conf.xenserver.master_dead_after)
    else:
        attempts = max([m["attempts"] for m in members]
                       + [fields.get("attempts", pool_row.get("attempts"))
                          or 0, 1])
        due_in = context.backoff(ctx.conf, attempts)
    return PassResult(ctx.aggregate_id, converged, state=state,
                      steps=ctx.steps_executed, reasons=reasons,
                      due_in=due_in)
