"""The pool itself: its name, the master hand-over, letting go of it."""

from poolmgr.db import api as db_api
from poolmgr.engine import journal
from poolmgr.engine import waits
from poolmgr.plan import planner
from poolmgr.xenapi import operations


def set_name_label(ctx, step, observed):
    journal.mutate(ctx, "set_name_label", step, lambda: operations.
                   set_pool_name(ctx.master_session, observed.pool.pool_ref,
                                 step.params["name"]))


def clear_name(ctx, step, observed):
    journal.mutate(ctx, "clear_name", step, lambda: operations.set_pool_name(
        ctx.master_session, observed.pool.pool_ref, ""))


def release_master(ctx, step, observed):
    journal.mutate(ctx, "release_master", step, lambda: operations.
                   set_pool_name(ctx.master_session, observed.pool.pool_ref,
                                 ""))
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_REMOVED, error_code=None,
                         error_params=None)
    db_api.update_pool(ctx.aggregate_id, master=None, pool_uuid=None)


def designate_master(ctx, step, observed):
    """pool.designate_new_master; the pool then waits (engine.waits) until
    the new master answers as master, and records it."""
    new = observed.hosts[step.host]
    journal.mutate(ctx, "designate_master", step, lambda: operations.
                   designate_new_master(ctx.master_session,
                                        step.params["host_ref"]))
    raise waits.Waiting(waits.WAIT_MASTER, step.host, new.uuid)


HANDLERS = {
    planner.SET_NAME_LABEL: set_name_label,
    planner.CLEAR_NAME: clear_name,
    planner.RELEASE_MASTER: release_master,
    planner.DESIGNATE_MASTER: designate_master,
}
