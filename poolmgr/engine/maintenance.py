"""Host maintenance inside a pool: drain, undrain, rolling reboot (issue 26).

An operator's request is a row of ``maintenance_operations``
(poolmgr-manage host drain|undrain, pool rolling-reboot). While a pool has
a running one, its passes (engine.passes.run_pass) run the operation's
current phase instead of the planner: each phase observes xapi, makes at
most one journaled mutation, writes the next phase, and the pass ends.
A phase decides from what xapi shows (enabled, resident VMs, live,
agent_start_time), so a pass resumed after SIGKILL redoes nothing that
took effect. Phases, per host::

    precheck (rolling reboot: every host's blockers, before anything)
    handover (drain of the master: pool.designate_new_master first)
    disable -> check -> [stop_compute_vm] -> evacuate -> drained (a drain)
                                             -> reboot -> wait_reboot
    enable (an undrain; the end of each host of a rolling reboot)

The facts are reference/operations.md §2 and §3. What the phases share
(bookkeeping, blockers, the Nova side) is
poolmgr.engine.maintenance_support.
"""

import datetime
import time

from poolmgr.plan import computevm
from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr.engine import maintenance_support as ms
from poolmgr.engine.maintenance_support import (  # noqa: F401 - re-exported
    ACT, CHECK, DISABLE, DONE, DRAINED, ENABLE, EVACUATE, HANDOVER, PRECHECK,
    REBOOT, STOP_COMPUTE_VM, WAIT, WAIT_REBOOT, describe, first_phase)
from poolmgr.engine import observe
from poolmgr.engine.steps import compute_vm as compute_vm_steps
from poolmgr.engine.steps import master as master_steps
from poolmgr.plan import planner
from poolmgr.xenapi import errors

def run(ctx, pool_row, op):
    """The operation's current phase; returns (pending, due_in).

    Raises waits.Waiting (a hand-over), LeaseLost and Stopping as a pass.
    """
    agg, unfinished = db_api.get_aggregate_for_pass(ctx.aggregate_id)
    ctx.cause = "%s (maintenance operation %s)" % (op["kind"], op["id"])
    if unfinished:
        journal.abandon_stale(ctx)
    desired = context.desired_of(agg)
    members = {m["host"]: m for m in db_api.list_members(ctx.aggregate_id)}
    observed = observe.observe(ctx, desired, pool_row, members, lazy=True)
    ctx.release_fields.update(live_migration_ready=False,
                              reasons=[describe(op)])
    try:
        return _PHASES[op["phase"]](ctx, op, observed)
    except ms.Failed as exc:
        failed = (str(exc), exc.code, exc.params)
    except errors.XapiError as exc:
        if exc.transient:
            return ms.transient(ctx, op, exc)
        failed = ("%s of %s failed: %s%s" % (
            op["phase"], op["current_host"], exc, ms.way_out(op)),
            exc.code, exc.params)
    return ms.fail(ctx, op, *failed)


# -- the phases ---------------------------------------------------------------

def _precheck(ctx, op, observed):
    ms.member(ctx, observed, op["hosts"][0])
    master = observed.master
    # NOTE(master-first): XO and XenCenter reboot the master first
    # (operations.md §3.1, §3.2) and it keeps its role: updating a member
    # first can leave it unable to talk to the master (§3.3).
    hosts = sorted(op["hosts"], key=lambda h: h != master)
    found = []
    for host in hosts:
        found += ms.blockers(ctx, observed, host)
    if found:
        # NOTE(before-anything): users found blockers half-way through a
        # rolling update (operations.md §5 item 7): every host is checked
        # before the first is disabled.
        raise ms.Failed("rolling reboot not started, nothing was changed: "
                      "%s" % "; ".join(line for _, _, line in found))
    ctx.fence()
    db_api.update_maintenance(op["id"], hosts=hosts)
    op["hosts"] = hosts
    return ms.advance(ctx, op, DISABLE, host=hosts[0])


def _handover(ctx, op, observed):
    host = op["current_host"]
    view = ms.member(ctx, observed, host)
    pool = observed.pool
    if pool.master_ref != view.ref:
        return ms.advance(ctx, op, DISABLE)
    successors = [n for n, v in sorted(observed.hosts.items())
                  if n != host and v.status == planner.IN_POOL
                  and pool.host_live(v.ref) and pool.host_enabled(v.ref)]
    if not successors:
        raise ms.Failed("%s is the pool master and no other member is live "
                      "and enabled to take the role; nothing was changed"
                      % host)
    # NOTE(hand-over): xapi's designate_new_master needs every member
    # reachable (operations.md §1.2); the existing step and its wait.
    step = planner.Step(planner.DESIGNATE_MASTER, successors[0], params={
        "host_ref": observed.hosts[successors[0]].ref, "master": host,
        "old_master": host})
    master_steps.designate_master(ctx, step, observed)


def _disable(ctx, op, observed):
    host = op["current_host"]
    view = ms.member(ctx, observed, host)
    if observed.pool.host_enabled(view.ref):
        ms.call(ctx, "host_disable", host, "host.disable(%s) on master %s"
                % (host, observed.master), "host.disable", view.ref)
    ms.set_member(ctx, host, db_api.MEMBER_DRAINING)
    ms.nova_service(ctx, host, enabled=False)
    return ms.advance(ctx, op, CHECK)


def _check(ctx, op, observed):
    host = op["current_host"]
    view = ms.member(ctx, observed, host)
    found = ms.blockers(ctx, observed, host)
    if found:
        ms.refuse_blockers(op, found, host, "no VM was moved")
    vm_state, _ = computevm.state(observed.pool, view.compute_vm, view.ref) \
        if view.compute_vm else (None, None)
    # NOTE(compute-vm): its disk is on the local SR, so xapi would refuse
    # the evacuation (VM_REQUIRES_SR); it is never migrated away from its
    # host, and shut down only now, after every check passed.
    if vm_state == computevm.RUNNING:
        return ms.advance(ctx, op, STOP_COMPUTE_VM)
    return ms.advance(ctx, op, EVACUATE)


def _stop_compute_vm(ctx, op, observed):
    host = op["current_host"]
    view = ms.member(ctx, observed, host)
    vm_state, vm = computevm.state(observed.pool, view.compute_vm, view.ref)
    if vm_state == computevm.RUNNING:
        compute_vm_steps.stop_for_maintenance(ctx, planner.Step(
            planner.STOP_COMPUTE_VM, host, params={
                "compute_vm": view.compute_vm, "where": "pool",
                "name_label": (vm or {}).get("name_label"),
                "master": observed.master}))
    return ms.advance(ctx, op, EVACUATE)


def _evacuate(ctx, op, observed):
    host = op["current_host"]
    view = ms.member(ctx, observed, host)
    if observed.pool.resident_vms(view.ref):
        # NOTE(evacuate-timeout): host.evacuate returns when every VM moved
        # (minutes on a real pool): its own session, whose socket timeout
        # is reboot_timeout, the bound of one host's maintenance. A call
        # longer than the lease lets another engine take the pool; its
        # pass finds this phase, and evacuates only what is still resident
        # (xapi answers OTHER_OPERATION_IN_PROGRESS, retried, meanwhile).
        session = ctx.sessions.fresh(ctx.master_session.url,
                                     follow_master=True,
                                     timeout=ctx.conf.xenserver.reboot_timeout)
        try:
            journal.mutate(ctx, "host_evacuate", ms.Call(
                host, "host.evacuate(%s) on master %s" % (
                    host, observed.master)),
                lambda: session.call("host.evacuate", view.ref))
        finally:
            session.logout()
    ms.set_member(ctx, host, db_api.MEMBER_DRAINED)
    if op["kind"] == db_api.MAINT_DRAIN:
        ctx.fence()
        db_api.update_maintenance(op["id"], status=db_api.MAINT_SUCCEEDED,
                                  phase=DRAINED)
        return ACT, 0.0
    return ms.advance(ctx, op, REBOOT)


def _agent_start_time(ctx, host_ref):
    other = ctx.master_session.call("host.get_other_config", host_ref) or {}
    try:
        return float(other.get("agent_start_time") or 0.0)
    except ValueError:
        return 0.0


def _reboot(ctx, op, observed):
    host = op["current_host"]
    view = ms.member(ctx, observed, host)
    detail = op.get("detail") or {}
    asked = detail.get("reboot_asked_at")
    if asked and (not observed.pool.host_live(view.ref) or
                  _agent_start_time(ctx, view.ref) > asked):
        # A pass that died after host.reboot: the host went down already.
        return ms.advance(ctx, op, WAIT_REBOOT)
    # NOTE(reboot-asked): written before the call; xapi's agent_start_time
    # after it tells the reboot happened (XO's test, operations.md §3.1;
    # it compares poolmgr's clock with the host's: keep them in NTP).
    asked = time.time()
    deadline = context.now() + datetime.timedelta(
        seconds=ctx.conf.xenserver.reboot_timeout)
    op["detail"] = dict(detail, reboot_asked_at=asked,
                        deadline=deadline.isoformat(), attempts=0)
    db_api.update_maintenance(op["id"], detail=op["detail"])
    ms.call(ctx, "host_reboot", host, "host.reboot(%s) on master %s, then "
            "wait until it is live again" % (host, observed.master),
            "host.reboot", view.ref)
    return ms.advance(ctx, op, WAIT_REBOOT)


def _wait_reboot(ctx, op, observed):
    host = op["current_host"]
    detail = op.get("detail") or {}
    back, seen = False, "the pool master does not answer"
    if observed.pool is not None:
        view = ms.member(ctx, observed, host)
        try:
            back = observed.pool.host_live(view.ref) and _agent_start_time(
                ctx, view.ref) > float(detail.get("reboot_asked_at") or 0.0)
            seen = "not live yet"
        except errors.XapiError as exc:
            # NOTE(reboot-wait): the master itself may be the one booting;
            # what the look met is shown, the deadline alone ends the wait.
            seen = str(exc)
    if back:
        return ms.advance(ctx, op, ENABLE)
    deadline = datetime.datetime.fromisoformat(detail["deadline"])
    if context.now() > deadline:
        raise ms.Failed("%s did not come back within [xenserver] "
                      "reboot_timeout (%.0f s) after host.reboot; the run "
                      "stops here, the hosts after it were not touched. "
                      "The way out: bring %s back, then 'poolmgr-manage "
                      "host undrain %s' and 'poolmgr-manage pool "
                      "rolling-reboot' for the rest" % (
                          host, ctx.conf.xenserver.reboot_timeout, host,
                          host), "HOST_REBOOT_TIMEOUT", [host])
    ctx.release_fields["reasons"] = [
        "%s: waiting for %s to be live again until %s (%s)" % (
            describe(op), host, detail["deadline"], seen)]
    return WAIT, ctx.conf.reconciler.wait_poll_interval


def _enable(ctx, op, observed):
    host = op["current_host"]
    view = ms.member(ctx, observed, host)
    if not observed.pool.host_enabled(view.ref):
        ms.call(ctx, "host_enable", host, "host.enable(%s) on master %s" % (
            host, observed.master), "host.enable", view.ref)
    # NOTE(truth): the member is active as soon as xapi has it enabled,
    # whatever Nova says after.
    ms.set_member(ctx, host, db_api.MEMBER_ACTIVE)
    _restart_compute_vm(ctx, observed, view)
    ms.nova_service(ctx, host, enabled=True)
    hosts = op["hosts"]
    if op["kind"] == db_api.MAINT_ROLLING_REBOOT and \
            hosts.index(host) + 1 < len(hosts):
        return ms.advance(ctx, op, DISABLE,
                          host=hosts[hosts.index(host) + 1],
                          reboot_asked_at=None, deadline=None)
    return ms.finish(ctx, op)


def _restart_compute_vm(ctx, observed, view):
    """The compute VM poolmgr shut down for the drain runs again on its
    host (the planner's rule, member_compute_vm_steps, applied now: a
    rolling reboot goes on to the next host before the planner runs)."""
    if not (view.compute_vm and view.compute_vm_stopped):
        return
    vm_state, vm = computevm.state(observed.pool, view.compute_vm, view.ref)
    if vm_state != computevm.HALTED:
        return
    compute_vm_steps.start_compute_vm(ctx, planner.Step(
        planner.START_COMPUTE_VM, view.name, params={
            "compute_vm": view.compute_vm, "where": "pool",
            "host_ref": view.ref, "master": observed.master,
            "name_label": (vm or {}).get("name_label")}), observed)


_PHASES = {PRECHECK: _precheck, HANDOVER: _handover, DISABLE: _disable,
           CHECK: _check, STOP_COMPUTE_VM: _stop_compute_vm,
           EVACUATE: _evacuate, REBOOT: _reboot, WAIT_REBOOT: _wait_reboot,
           ENABLE: _enable}
