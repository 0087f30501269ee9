"""Joining a host: preflight, pool.join on the joiner, wait until live."""

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import journal
from poolmgr.engine import waits
from poolmgr.plan import planner
from poolmgr.plan import readiness
from poolmgr.xenapi import operations

LOG = logging.getLogger(__name__)

def preflight(ctx, step, observed):
    if not step.failures:
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_PREFLIGHT, error_code=None,
                             error_params=None)
        return
    failures = step.failures
    code = "+".join(f.code for f in failures)
    params = (list(failures[0].params) if len(failures) == 1 else
              ["%s %s" % (f.code, " ".join(f.params)) for f in failures])
    LOG.warning("Pool %s: %s fails preflight: %s", ctx.aggregate_id,
                step.host, code)
    journal.record_refusal(ctx, "preflight", step, code, params)
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_ERROR, error_code=code[:255],
                         error_params=params,
                         xenserver_uuid=observed.hosts[step.host].uuid)
    db_api.update_pool(ctx.aggregate_id, last_error_code=code[:255],
                       last_error="%s: %s" % (step.host, " ".join(
                           f.remediation for f in failures))[:2000])


def written_by_its_join(step, following):
    """True for a passing pre-flight whose join comes next in the plan.

    NOTE(one-write): the pre-flight's member write (state ``preflight``,
    its error cleared) would be overwritten by the join's a few
    milliseconds later in the same pass; the join's write clears the
    error itself, so the pass skips the pre-flight's (400 UPDATEs fewer in
    the 100 x 5 build-out). A pre-flight followed by anything else (a
    compute VM to stop first) still writes its state.
    """
    return (step.kind == planner.PREFLIGHT and not step.failures
            and following is not None and following.kind == planner.JOIN
            and following.host == step.host)


def join(ctx, step, observed):
    view = observed.hosts[step.host]
    ctx.write_members(step.host, state=db_api.MEMBER_JOINING,
                      xenserver_uuid=view.uuid, error_code=None,
                      error_params=None)
    xs = ctx.conf.xenserver
    joiner = ctx.sessions.get(view.url, follow_master=False)
    journal.mutate(ctx, "join", step, lambda: operations.join_pool(
        joiner, step.params["master_address"], xs.connection_username,
        xs.connection_password, force=step.params["force"]))


def wait_member(ctx, step, observed):
    """Done when the master lists the member complete; else the pass ends
    and the pool waits (engine.waits) without holding a thread."""
    uuid_ = step.params.get("uuid") or (
        observed.hosts.get(step.host) and observed.hosts[step.host].uuid)
    snap = observed.pool
    ref = snap.host_ref_by_uuid(uuid_) if snap is not None else None
    if ref is not None and readiness.member_complete(snap, ref):
        return
    raise waits.Waiting(waits.WAIT_MEMBER, step.host, uuid_)


HANDLERS = {
    planner.PREFLIGHT: preflight,
    planner.JOIN: join,
    planner.WAIT_MEMBER: wait_member,
}
