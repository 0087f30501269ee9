"""Ejecting a host: pool.eject on the master, wait until it is standalone."""

import time

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr import planner
from poolmgr.xenapi import errors
from poolmgr.xenapi import operations

# NOTE(poll): as for a join; the probe is one call on the ejected host.
POLL_INTERVAL = 0.25


def eject(ctx, step, observed):
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_EJECTING)
    journal.mutate(ctx, "eject", step, lambda: operations.eject_host(
        ctx.master_session, step.params["host_ref"]))


def _probe(ctx, url):
    return ctx.sessions.fresh(url, follow_master=False, timeout=min(
        5.0, ctx.conf.xenserver.call_timeout))


def wait_standalone(ctx, step, observed):
    host = ctx.inventory.get(step.host)
    if host is None:
        return
    deadline = time.monotonic() + ctx.conf.xenserver.eject_timeout
    probe = _probe(ctx, host["xapi_url"])
    while True:
        try:
            snap = operations.read_pool(probe)
            if len(snap.hosts) == 1:
                probe.logout()
                return
        except errors.XapiError:
            probe = _probe(ctx, host["xapi_url"])
        if time.monotonic() > deadline:
            raise context.WaitTimeout(step.host, (
                "%s did not come back standalone %.0f s after eject" % (
                    step.host, ctx.conf.xenserver.eject_timeout)))
        ctx.sleep(POLL_INTERVAL)


def refuse_eject(ctx, step, observed):
    code, params = "HOST_HAS_RESIDENT_VMS", list(step.params["vms"])
    journal.record_refusal(ctx, "eject", step, code, params)
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_ERROR, error_code=code,
                         error_params=params)
    db_api.update_pool(ctx.aggregate_id, last_error_code=code, last_error=(
        "%s: migrate or shut down %s, then 'poolmgr-manage pool retry'" % (
            step.host, ", ".join(params)))[:2000])


HANDLERS = {
    planner.EJECT: eject,
    planner.WAIT_STANDALONE: wait_standalone,
    planner.REFUSE_EJECT: refuse_eject,
}
