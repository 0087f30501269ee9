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

The facts are reference/operations.md §2 and §3.
"""

import datetime
import time

from oslo_config import cfg
from oslo_log import log as logging

from poolmgr import computevm
from poolmgr.conf import nova as nova_conf
from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr.engine import observe
from poolmgr.engine.steps import compute_vm as compute_vm_steps
from poolmgr.engine.steps import master as master_steps
from poolmgr import planner
from poolmgr.xenapi import errors

LOG = logging.getLogger(__name__)

PRECHECK = "precheck"
HANDOVER = "handover"
DISABLE = "disable"
CHECK = "check"
STOP_COMPUTE_VM = "stop_compute_vm"
EVACUATE = "evacuate"
REBOOT = "reboot"
WAIT_REBOOT = "wait_reboot"
ENABLE = "enable"
DRAINED = "drained"
DONE = "done"

ACT = "act"
WAIT = "wait"

NOVA_REASON = "poolmgr drain"
NOVA_ERROR_CODE = "NOVA_SERVICE_UPDATE_FAILED"


def first_phase(kind):
    return {db_api.MAINT_DRAIN: HANDOVER, db_api.MAINT_UNDRAIN: ENABLE,
            db_api.MAINT_ROLLING_REBOOT: PRECHECK}[kind]


def describe(op):
    """One line: what the operation does now (pool show, the reasons)."""
    kind = op["kind"].replace("_", " ")
    if op["status"] == db_api.MAINT_RUNNING:
        return "maintenance %s %s (operation %s): %s at %s" % (
            kind, ", ".join(op["hosts"]), op["id"], op["current_host"],
            op["phase"])
    text = "maintenance %s %s (operation %s) %s" % (
        kind, ", ".join(op["hosts"]), op["id"], op["status"])
    return text + (": %s" % op["reason"] if op.get("reason") else "")


class _Call:
    """A journal entry's text and host (journal.mutate reads these)."""

    def __init__(self, host, text):
        self.host = host
        self._text = text

    def describe(self, master=None):
        return self._text


class _Failed(Exception):
    """The operation stops: ``reason`` (with the way out)."""

    def __init__(self, reason, code=None, params=()):
        self.code = code
        self.params = list(params)
        super().__init__(reason)


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
    except _Failed as exc:
        failed = (str(exc), exc.code, exc.params)
    except errors.XapiError as exc:
        if exc.transient:
            return _transient(ctx, op, exc)
        failed = ("%s of %s failed: %s%s" % (
            op["phase"], op["current_host"], exc, _way_out(op)),
            exc.code, exc.params)
    return _fail(ctx, op, *failed)


# -- bookkeeping --------------------------------------------------------------

def _advance(ctx, op, phase, host=None, **detail):
    fields = {"phase": phase}
    if host is not None:
        fields["current_host"] = host
    if detail:
        fields["detail"] = dict(op.get("detail") or {}, **detail)
    ctx.fence()
    db_api.update_maintenance(op["id"], **fields)
    LOG.info("Pool %s: maintenance %s: %s -> %s", ctx.aggregate_id,
             op["id"], host or op["current_host"], phase)
    return ACT, 0.0


def _finish(ctx, op):
    ctx.fence()
    db_api.update_maintenance(op["id"], status=db_api.MAINT_SUCCEEDED,
                              phase=DONE, reason=None)
    LOG.info("Pool %s: maintenance %s (%s) done", ctx.aggregate_id,
             op["id"], op["kind"])
    return ACT, 0.0


def _fail(ctx, op, reason, code=None, params=()):
    LOG.warning("Pool %s: maintenance %s stopped: %s", ctx.aggregate_id,
                op["id"], reason)
    ctx.fence()
    db_api.update_maintenance(op["id"], status=db_api.MAINT_FAILED,
                              reason=reason[:4000])
    if code and op["current_host"]:
        db_api.upsert_member(ctx.aggregate_id, op["current_host"],
                             error_code=code[:255],
                             error_params=[str(p) for p in params])
    ctx.release_fields["reasons"] = [reason]
    return ACT, 0.0


def _transient(ctx, op, exc):
    attempts = int((op.get("detail") or {}).get("attempts") or 0) + 1
    if attempts >= ctx.conf.reconciler.max_attempts:
        return _fail(ctx, op, "%s of %s failed %d times: %s%s" % (
            op["phase"], op["current_host"], attempts, exc, _way_out(op)),
            exc.code, exc.params)
    db_api.update_maintenance(op["id"], detail=dict(
        op.get("detail") or {}, attempts=attempts))
    due_in = context.backoff(ctx.conf, attempts)
    ctx.release_fields["reasons"] = [
        "%s; transient xapi error (attempt %d), trying again in %.1f s: %s"
        % (describe(op), attempts, due_in, exc)]
    return WAIT, due_in


def _way_out(op):
    host = op["current_host"]
    if op["kind"] == db_api.MAINT_UNDRAIN:
        return "; run 'poolmgr-manage host undrain %s' again" % host
    return ("; %s stays disabled: fix the cause, then 'poolmgr-manage host "
            "drain %s' (or 'pool rolling-reboot' again), or 'poolmgr-manage "
            "host undrain %s' to put it back in service" % (host, host, host))


def _member(ctx, observed, host):
    if observed.pool is None:
        raise errors.XapiError("CONNECTION_FAILED", [
            observed.master_problem or "no pool master reachable"])
    view = observed.hosts.get(host)
    if view is None or view.status != planner.IN_POOL:
        raise _Failed("%s is not a member of this pool (%s)" % (
            host, view.status if view else "not in the aggregate"))
    return view


def _call(ctx, kind, host, text, method, *args):
    return journal.mutate(ctx, kind, _Call(host, text),
                          lambda: ctx.master_session.call(method, *args))


def _set_member(ctx, host, state):
    db_api.upsert_member(ctx.aggregate_id, host, state=state,
                         error_code=None, error_params=None)


# -- blockers -----------------------------------------------------------------

def blockers(ctx, observed, host):
    """[line] for every VM that prevents the evacuation of ``host`` (its
    own compute VM excepted: poolmgr shuts it down, issue 12's rule)."""
    view = _member(ctx, observed, host)
    found = ctx.master_session.call(
        "host.get_vms_which_prevent_evacuation", view.ref) or {}
    pool = observed.pool
    names = {ref: (r.get("name_label") or ref) for table in (pool.vms,
                                                              pool.srs)
             for ref, r in table.items()}
    lines = []
    for vm_ref, error in sorted(found.items()):
        vm = pool.vms.get(vm_ref, {})
        if view.compute_vm and vm.get("uuid") == view.compute_vm:
            continue
        code, params = (list(error) + [""])[0], list(error)[1:]
        lines.append((code, params, "VM %s (%s) on %s: %s %s%s" % (
            vm.get("name_label") or "?", vm.get("uuid") or vm_ref, host,
            code, " ".join(str(p) for p in params),
            _readable(code, params, names))))
    return lines


def _readable(code, params, names):
    if code == "VM_REQUIRES_SR" and len(params) > 1:
        return " (its disk is on SR %s, which no other enabled member " \
               "sees: shut it down or move the disk to a shared SR)" % (
                   names.get(params[1], params[1]))
    if code == "HOST_NOT_ENOUGH_FREE_MEMORY":
        return " (no other member has the memory: shut it down or free " \
               "memory elsewhere)"
    if code == "NO_HOSTS_AVAILABLE":
        return " (no other member is live and enabled)"
    return ""


def _refuse_blockers(op, lines, host, before):
    raise _Failed("%s cannot be evacuated, %s: %s%s" % (
        host, before, "; ".join(line for _, _, line in lines),
        _way_out(op)), lines[0][0], lines[0][1])


# -- the phases ---------------------------------------------------------------

def _precheck(ctx, op, observed):
    _member(ctx, observed, op["hosts"][0])
    master = observed.master
    # NOTE(master-first): XO and XenCenter reboot the master first
    # (operations.md §3.1, §3.2) and it keeps its role: updating a member
    # first can leave it unable to talk to the master (§3.3).
    hosts = sorted(op["hosts"], key=lambda h: h != master)
    found = []
    for host in hosts:
        found += blockers(ctx, observed, host)
    if found:
        # NOTE(before-anything): users found blockers half-way through a
        # rolling update (operations.md §5 item 7): every host is checked
        # before the first is disabled.
        raise _Failed("rolling reboot not started, nothing was changed: "
                      "%s" % "; ".join(line for _, _, line in found))
    ctx.fence()
    db_api.update_maintenance(op["id"], hosts=hosts)
    op["hosts"] = hosts
    return _advance(ctx, op, DISABLE, host=hosts[0])


def _handover(ctx, op, observed):
    host = op["current_host"]
    view = _member(ctx, observed, host)
    pool = observed.pool
    if pool.master_ref != view.ref:
        return _advance(ctx, op, DISABLE)
    successors = [n for n, v in sorted(observed.hosts.items())
                  if n != host and v.status == planner.IN_POOL
                  and pool.host_live(v.ref) and pool.host_enabled(v.ref)]
    if not successors:
        raise _Failed("%s is the pool master and no other member is live "
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
    view = _member(ctx, observed, host)
    if observed.pool.host_enabled(view.ref):
        _call(ctx, "host_disable", host, "host.disable(%s) on master %s"
              % (host, observed.master), "host.disable", view.ref)
    _set_member(ctx, host, db_api.MEMBER_DRAINING)
    _nova_service(ctx, host, enabled=False)
    return _advance(ctx, op, CHECK)


def _check(ctx, op, observed):
    host = op["current_host"]
    view = _member(ctx, observed, host)
    found = blockers(ctx, observed, host)
    if found:
        _refuse_blockers(op, found, host, "no VM was moved")
    vm_state, _ = computevm.state(observed.pool, view.compute_vm, view.ref) \
        if view.compute_vm else (None, None)
    # NOTE(compute-vm): its disk is on the local SR, so xapi would refuse
    # the evacuation (VM_REQUIRES_SR); it is never migrated away from its
    # host, and shut down only now, after every check passed.
    if vm_state == computevm.RUNNING:
        return _advance(ctx, op, STOP_COMPUTE_VM)
    return _advance(ctx, op, EVACUATE)


def _stop_compute_vm(ctx, op, observed):
    host = op["current_host"]
    view = _member(ctx, observed, host)
    vm_state, vm = computevm.state(observed.pool, view.compute_vm, view.ref)
    if vm_state == computevm.RUNNING:
        compute_vm_steps.stop_for_maintenance(ctx, planner.Step(
            planner.STOP_COMPUTE_VM, host, params={
                "compute_vm": view.compute_vm, "where": "pool",
                "name_label": (vm or {}).get("name_label"),
                "master": observed.master}))
    return _advance(ctx, op, EVACUATE)


def _evacuate(ctx, op, observed):
    host = op["current_host"]
    view = _member(ctx, observed, host)
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
            journal.mutate(ctx, "host_evacuate", _Call(
                host, "host.evacuate(%s) on master %s" % (
                    host, observed.master)),
                lambda: session.call("host.evacuate", view.ref))
        finally:
            session.logout()
    _set_member(ctx, host, db_api.MEMBER_DRAINED)
    if op["kind"] == db_api.MAINT_DRAIN:
        ctx.fence()
        db_api.update_maintenance(op["id"], status=db_api.MAINT_SUCCEEDED,
                                  phase=DRAINED)
        return ACT, 0.0
    return _advance(ctx, op, REBOOT)


def _agent_start_time(ctx, host_ref):
    other = ctx.master_session.call("host.get_other_config", host_ref) or {}
    try:
        return float(other.get("agent_start_time") or 0.0)
    except ValueError:
        return 0.0


def _reboot(ctx, op, observed):
    host = op["current_host"]
    view = _member(ctx, observed, host)
    detail = op.get("detail") or {}
    asked = detail.get("reboot_asked_at")
    if asked and (not observed.pool.host_live(view.ref) or
                  _agent_start_time(ctx, view.ref) > asked):
        # A pass that died after host.reboot: the host went down already.
        return _advance(ctx, op, WAIT_REBOOT)
    # NOTE(reboot-asked): written before the call; xapi's agent_start_time
    # after it tells the reboot happened (XO's test, operations.md §3.1;
    # it compares poolmgr's clock with the host's: keep them in NTP).
    asked = time.time()
    deadline = context.now() + datetime.timedelta(
        seconds=ctx.conf.xenserver.reboot_timeout)
    db_api.update_maintenance(op["id"], detail=dict(
        detail, reboot_asked_at=asked, deadline=deadline.isoformat(),
        attempts=0))
    _call(ctx, "host_reboot", host, "host.reboot(%s) on master %s, then "
          "wait until it is live again" % (host, observed.master),
          "host.reboot", view.ref)
    return _advance(ctx, op, WAIT_REBOOT)


def _wait_reboot(ctx, op, observed):
    host = op["current_host"]
    detail = op.get("detail") or {}
    back, seen = False, "the pool master does not answer"
    if observed.pool is not None:
        view = _member(ctx, observed, host)
        try:
            back = observed.pool.host_live(view.ref) and _agent_start_time(
                ctx, view.ref) > float(detail.get("reboot_asked_at") or 0.0)
            seen = "not live yet"
        except errors.XapiError as exc:
            # NOTE(reboot-wait): the master itself may be the one booting;
            # what the look met is shown, the deadline alone ends the wait.
            seen = str(exc)
    if back:
        return _advance(ctx, op, ENABLE)
    deadline = datetime.datetime.fromisoformat(detail["deadline"])
    if context.now() > deadline:
        raise _Failed("%s did not come back within [xenserver] "
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
    view = _member(ctx, observed, host)
    if not observed.pool.host_enabled(view.ref):
        _call(ctx, "host_enable", host, "host.enable(%s) on master %s" % (
            host, observed.master), "host.enable", view.ref)
    # NOTE(truth): the member is active as soon as xapi has it enabled,
    # whatever Nova says after.
    _set_member(ctx, host, db_api.MEMBER_ACTIVE)
    _restart_compute_vm(ctx, observed, view)
    _nova_service(ctx, host, enabled=True)
    hosts = op["hosts"]
    if op["kind"] == db_api.MAINT_ROLLING_REBOOT and \
            hosts.index(host) + 1 < len(hosts):
        return _advance(ctx, op, DISABLE, host=hosts[hosts.index(host) + 1],
                        reboot_asked_at=None, deadline=None, attempts=0)
    return _finish(ctx, op)


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


# -- Nova ---------------------------------------------------------------------

def _nova_configured(conf):
    # NOTE(lean): poolmgr.nova imports keystoneauth1; the reconciler worker
    # loads it only when a drain first needs Nova (test_daemon_lean).
    from poolmgr import nova
    try:
        return nova.configured(conf)
    except cfg.NoSuchOptError:
        nova_conf.register_keystoneauth(conf)
        return nova.configured(conf)


def _nova_service(ctx, host, enabled):
    """The host's nova-compute service disabled (a drain) or enabled,
    when [nova] is configured; journaled like an xapi call."""
    if not _nova_configured(ctx.conf):
        return
    from poolmgr import nova
    text = ("PUT /os-services/<id of nova-compute on %s> status=%s%s" % (
        host, "enabled" if enabled else "disabled",
        "" if enabled else ", disabled_reason=%r" % NOVA_REASON))
    kind = "nova_service_%s" % ("enable" if enabled else "disable")
    ctx.fence(doing=text)
    op_id = journal.start(ctx, kind, _Call(host, text))
    try:
        nova.NovaClient(ctx.conf).set_compute_service(
            host, enabled, None if enabled else NOVA_REASON)
    except nova.NovaError as exc:
        journal.finish(ctx, op_id, db_api.OP_FAILED, NOVA_ERROR_CODE,
                       [str(exc)[:200]], kind=kind)
        raise _Failed("Nova: %s" % exc, NOVA_ERROR_CODE, [str(exc)[:200]])
    if not journal.finish(ctx, op_id, db_api.OP_SUCCEEDED, kind=kind):
        raise context.LeaseLost()
