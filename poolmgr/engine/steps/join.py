"""Joining a host: preflight, pool.join on the joiner, wait until live."""

import time

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr import planner
from poolmgr import readiness
from poolmgr.xenapi import operations

LOG = logging.getLogger(__name__)

# NOTE(poll): the master is read with one call, so polling it every quarter
# second while a member joins costs little and keeps build-out close to the
# join latency itself.
MEMBER_POLL_INTERVAL = 0.25
# Seconds a live member gets for its shared-SR PBDs to plug by themselves
# (xapi plugs them at slave start-up) before poolmgr repairs them.
PBD_SETTLE_TIME = 3.0


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


def join(ctx, step, observed):
    view = observed.hosts[step.host]
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_JOINING, xenserver_uuid=view.uuid)
    xs = ctx.conf.xenserver
    joiner = ctx.sessions.get(view.url, follow_master=False)
    journal.mutate(ctx, "join", step, lambda: operations.join_pool(
        joiner, step.params["master_address"], xs.connection_username,
        xs.connection_password, force=step.params["force"]))


def wait_member(ctx, step, observed):
    uuid_ = step.params.get("uuid") or (
        observed.hosts.get(step.host) and observed.hosts[step.host].uuid)
    deadline = time.monotonic() + ctx.conf.xenserver.join_timeout
    live_since = None
    while True:
        snap = operations.read_pool(ctx.master_session)
        ref = snap.host_ref_by_uuid(uuid_)
        if ref is not None:
            if readiness.member_complete(snap, ref):
                return
            if snap.host_live(ref) and snap.host_enabled(ref):
                live_since = live_since or time.monotonic()
                if time.monotonic() - live_since >= PBD_SETTLE_TIME:
                    return
        if time.monotonic() > deadline:
            raise context.WaitTimeout(step.host, (
                "%s not live and enabled on the master %.0f s after "
                "joining" % (step.host, ctx.conf.xenserver.join_timeout)))
        ctx.sleep(MEMBER_POLL_INTERVAL)


HANDLERS = {
    planner.PREFLIGHT: preflight,
    planner.JOIN: join,
    planner.WAIT_MEMBER: wait_member,
}
