"""The pool itself: its name, the master hand-over, letting go of it."""

import time

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr import planner
from poolmgr.xenapi import errors
from poolmgr.xenapi import operations

POLL_INTERVAL = 0.25


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
    new = observed.hosts[step.host]
    journal.mutate(ctx, "designate_master", step, lambda: operations.
                   designate_new_master(ctx.master_session,
                                        step.params["host_ref"]))
    deadline = time.monotonic() + ctx.conf.xenserver.join_timeout
    follower = ctx.sessions.get(new.url, follow_master=True)
    while True:
        try:
            snap = operations.read_pool(follower)
            if snap.master_uuid == new.uuid:
                break
        except errors.XapiError as exc:
            if not exc.transient:
                raise
        if time.monotonic() > deadline:
            raise context.WaitTimeout(step.host, "%s did not become master"
                                      % step.host)
        ctx.sleep(POLL_INTERVAL)
    db_api.update_pool(ctx.aggregate_id, master=step.host)


HANDLERS = {
    planner.SET_NAME_LABEL: set_name_label,
    planner.CLEAR_NAME: clear_name,
    planner.RELEASE_MASTER: release_master,
    planner.DESIGNATE_MASTER: designate_master,
}
