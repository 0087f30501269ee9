"""Shared storage on a member: plug its PBD, or create and plug one."""

from poolmgr.engine import journal
from poolmgr.plan import planner
from poolmgr.xenapi import operations


def plug_pbd(ctx, step, observed):
    journal.mutate(ctx, "plug_pbd", step, lambda: operations.plug_pbd(
        ctx.master_session, step.params["pbd_ref"]))


def create_pbd(ctx, step, observed):
    journal.mutate(ctx, "create_pbd", step, lambda: operations.create_pbd(
        ctx.master_session, step.params["host_ref"], step.params["sr_ref"],
        step.params["device_config"]))


HANDLERS = {
    planner.PLUG_PBD: plug_pbd,
    planner.CREATE_PBD: create_pbd,
}
