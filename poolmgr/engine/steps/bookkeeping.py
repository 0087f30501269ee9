"""Steps that only write poolmgr's own tables: blocked, active, dismissed."""

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.plan import planner

LOG = logging.getLogger(__name__)


def blocked(ctx, step, observed):
    LOG.info("Pool %s: blocked: %s", ctx.aggregate_id, step.reason)
    if step.host and step.params.get("park"):
        # Parked (a host in a pool another aggregate owns): left alone
        # until desired state changes or an operator retries.
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_ERROR,
                             error_code=step.params["code"][:255],
                             error_params=step.params["params"])
        return
    if step.host and step.params.get("code"):
        # Not parked: the host is looked at again after the backoff; the
        # code is recorded so that pool show says why it waits.
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             error_code=step.params["code"][:255],
                             error_params=step.params["params"])


def mark_active(ctx, step, observed):
    view = observed.hosts.get(step.host)
    # Held for the pass's join when one follows (NOTE(members-write)).
    ctx.write_member(step.host, state=db_api.MEMBER_ACTIVE, error_code=None,
                     error_params=None, attempts=0, next_attempt_at=None,
                     xenserver_uuid=view.uuid if view else None)


def mark_removed(ctx, step, observed):
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_REMOVED, error_code=None,
                         error_params=None, attempts=0)


def dismiss(ctx, step, observed):
    db_api.update_pool(ctx.aggregate_id, state=db_api.POOL_DISMISSED,
                       live_migration_ready=False, due_at=None,
                       reasons=["aggregate is not a hypervisor pool any "
                                "more: poolmgr no longer manages it"])


HANDLERS = {
    planner.BLOCKED: blocked,
    planner.MARK_ACTIVE: mark_active,
    planner.MARK_REMOVED: mark_removed,
    planner.DISMISS: dismiss,
}
