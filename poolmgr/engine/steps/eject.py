"""Ejecting a host: pool.eject on the master, wait until it is standalone."""

from poolmgr.db import api as db_api
from poolmgr.engine import journal
from poolmgr.engine import waits
from poolmgr.plan import planner
from poolmgr.xenapi import operations


def eject(ctx, step, observed):
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_EJECTING)
    journal.mutate(ctx, "eject", step, lambda: operations.eject_host(
        ctx.master_session, step.params["host_ref"]))


def wait_standalone(ctx, step, observed):
    """The pass ends; the pool waits until the host answers standalone."""
    if ctx.inventory.get(step.host) is None:
        return
    raise waits.Waiting(waits.WAIT_STANDALONE, step.host,
                        step.params.get("uuid"))


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
