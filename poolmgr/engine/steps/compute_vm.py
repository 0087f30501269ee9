"""The compute VM around a join or an eject (classic topology, issue 12).

nova-compute runs in a VM on the host it manages. To join, poolmgr records
that it is stopping that VM (``hosts.compute_vm_stopped_at``), shuts it down
(VM.clean_shutdown, VM.hard_shutdown after
``[xenserver] compute_vm_shutdown_timeout``), joins, waits until the master
lists the host live, and starts the VM on that host through the master
(VM.start_on). A failed pool.join starts it again on the standalone host at
once. Each call is a journal row; the row of the start that brings the VM
back carries the compute node's downtime (``operations.downtime_s``).

Crash safety comes from the planner: every pass decides from what xapi
shows (VM running / halted, host standalone / member) and from
``compute_vm_stopped_at``, so a pass resumed after SIGKILL picks up at the
next step, and only a VM poolmgr stopped is ever started.
"""

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.db import compute_vms
from poolmgr.engine import journal
from poolmgr.engine.steps import eject as eject_steps
from poolmgr.engine.steps import join as join_steps
from poolmgr.plan import planner
from poolmgr.xenapi import errors

LOG = logging.getLogger(__name__)

# Codes meaning "the clean shutdown did not finish": fall back to a hard one.
_CLEAN_SHUTDOWN_DID_NOT_FINISH = ("TIMEOUT", "VM_SHUTDOWN_TIMEOUT",
                                  "TASK_CANCELLED")
EJECT_REFUSED_CODE = "EJECT_WOULD_DESTROY_COMPUTE_VM"


class _Text:
    """A journal entry's text when it is not the step's own description."""

    def __init__(self, host, text):
        self.host = host
        self._text = text

    def describe(self, master=None):
        return self._text


def _mutate(ctx, kind, step, call, cause=None):
    """journal.mutate, returning (operation id, result); ``cause`` is added
    to the pass's cause on this row (e.g. why a VM is started again)."""
    ctx.fence(doing=step.describe())
    saved = ctx.cause
    if cause:
        ctx.cause = "%s; %s" % (saved, cause) if saved else cause
    try:
        op_id = journal.start(ctx, kind, step)
    finally:
        ctx.cause = saved
    try:
        result = call()
    except errors.XapiError as exc:
        journal.finish(ctx, op_id, db_api.OP_FAILED, exc.code, exc.params)
        exc.host = step.host
        exc.step_kind = kind
        raise
    except BaseException as exc:
        journal.finish(ctx, op_id, db_api.OP_ABANDONED, type(exc).__name__,
                       [str(exc)[:200]])
        raise
    journal.finish(ctx, op_id, db_api.OP_SUCCEEDED)
    ctx.steps_executed += 1
    return op_id, result


def _vm_name(params):
    return "compute VM %s (%s)" % (params.get("name_label") or "?",
                                   params.get("compute_vm"))


def _standalone_session(ctx, observed, host):
    return ctx.sessions.get(observed.hosts[host].url, follow_master=False)


def _power_state(session, vm_ref):
    try:
        return session.call("VM.get_power_state", vm_ref)
    except errors.XapiError:
        return None


# -- shutting it down ---------------------------------------------------------

def _shutdown(ctx, step, session, follow_master, entry=None):
    """Clean shutdown; a hard one if it does not finish in time. ``entry``:
    the journal text, when not the step's own description."""
    p = step.params
    vm_ref = session.call("VM.get_by_uuid", p["compute_vm"])
    timeout = ctx.conf.xenserver.compute_vm_shutdown_timeout
    # NOTE(timeout): its own session, whose socket timeout is the shutdown
    # timeout, so a guest ignoring the request costs at most that long.
    clean = ctx.sessions.fresh(session.url, follow_master=follow_master,
                               timeout=timeout)
    try:
        _mutate(ctx, "compute_vm_clean_shutdown", entry or step,
                lambda: clean.call("VM.clean_shutdown", vm_ref))
        return
    except errors.XapiError as exc:
        if _power_state(session, vm_ref) == "Halted":
            return
        if exc.code not in _CLEAN_SHUTDOWN_DID_NOT_FINISH:
            raise
        LOG.warning("Pool %s: clean shutdown of the %s on %s did not finish "
                    "in %.0f s (%s); hard shutdown", ctx.aggregate_id,
                    _vm_name(p), step.host, timeout, exc.code)
    finally:
        clean.logout()
    _mutate(ctx, "compute_vm_hard_shutdown", _Text(
        step.host, "VM.hard_shutdown(%s) on %s" % (_vm_name(p), step.host)),
        lambda: session.call("VM.hard_shutdown", vm_ref),
        cause="VM.clean_shutdown did not finish in %.0f s" % timeout)


def stop_compute_vm(ctx, step, observed):
    """Before a join: record that poolmgr stops it, then shut it down."""
    session = _standalone_session(ctx, observed, step.host)
    compute_vms.mark_stopped(step.host, step.params["compute_vm"])
    try:
        _shutdown(ctx, step, session, follow_master=False)
    except errors.XapiError:
        vm_ref = session.call("VM.get_by_uuid", step.params["compute_vm"])
        if _power_state(session, vm_ref) == "Running":
            # Still running: poolmgr did not stop it after all.
            compute_vms.clear_stopped(step.host)
        raise


# -- starting it again --------------------------------------------------------

def _start_on(session, vm_uuid, host_ref):
    vm_ref = session.call("VM.get_by_uuid", vm_uuid)
    session.call("VM.start_on", vm_ref, host_ref, False, False)
    return vm_ref


def _record_running(ctx, host, op_id):
    """The VM runs again: poolmgr owes it nothing; store the downtime."""
    stamp = compute_vms.clear_stopped(host)
    if stamp is None or op_id is None:
        return None
    downtime = max((db_api._now() - stamp).total_seconds(), 0.0)
    compute_vms.set_downtime(op_id, downtime)
    LOG.info("Pool %s: compute VM of %s runs again; the compute node was "
             "down %.1f s", ctx.aggregate_id, host, downtime)
    return downtime


def start_compute_vm(ctx, step, observed):
    p = step.params
    if p.get("where") == "pool":
        session = ctx.master_session
        host_ref = p.get("host_ref") or session.call(
            "host.get_by_uuid", observed.hosts[step.host].uuid)
    else:
        session = _standalone_session(ctx, observed, step.host)
        host_ref = p["host_ref"]
    try:
        op_id, vm_ref = _mutate(ctx, "compute_vm_start", step,
                                lambda: _start_on(session, p["compute_vm"],
                                                  host_ref))
    except errors.XapiError as exc:
        if exc.code != "VM_BAD_POWER_STATE":
            raise
        # Someone started it meanwhile: it runs, which is what we wanted.
        op_id, vm_ref = None, session.call("VM.get_by_uuid", p["compute_vm"])
    vm = session.call("VM.get_record", vm_ref)
    if vm.get("power_state") != "Running" or vm.get("resident_on") != \
            host_ref:
        raise errors.XapiError("COMPUTE_VM_NOT_RUNNING", [
            p["compute_vm"], vm.get("power_state"), vm.get("resident_on")],
            method="VM.start_on")
    _record_running(ctx, step.host, op_id)


def compute_vm_running(ctx, step, observed):
    """It runs again (a pass died after starting it, or an operator started
    it): clear the mark; the downtime goes on the last start row."""
    stamp = compute_vms.clear_stopped(step.host)
    if stamp is None:
        return
    last = db_api.list_operations(ctx.aggregate_id, limit=1,
                                  kind="compute_vm_start", host=step.host)
    if last and last[0]["status"] == db_api.OP_SUCCEEDED \
            and last[0].get("downtime_s") is None \
            and last[0]["started_at"] >= stamp:
        compute_vms.set_downtime(last[0]["id"], max(
            (last[0]["finished_at"] - stamp).total_seconds(), 0.0))
    LOG.info("Pool %s: compute VM of %s is %s; poolmgr no longer owes it a "
             "start", ctx.aggregate_id, step.host, step.params.get("state"))


# -- joining with it ----------------------------------------------------------

def join_compute_host(ctx, step, observed):
    """pool.join; if xapi refuses it, start the compute VM again at once
    (the member then records xapi's error, as for any failed join)."""
    try:
        join_steps.join(ctx, step, observed)
    except errors.XapiError as exc:
        if getattr(exc, "step_kind", None) != "join":
            raise
        _start_after_failed_join(ctx, step, observed, exc)
        raise


def _start_after_failed_join(ctx, step, observed, join_error):
    p = step.params
    session = _standalone_session(ctx, observed, step.host)
    text = _Text(step.host, "VM.start_on(%s, %s) on %s (standalone: "
                 "pool.join failed)" % (_vm_name(p), step.host, step.host))
    try:
        op_id, _ = _mutate(ctx, "compute_vm_start", text,
                           lambda: _start_on(session, p["compute_vm"],
                                             p["host_ref"]),
                           cause="pool.join failed: %s" % join_error.code)
    except errors.XapiError as exc:
        # NOTE(resume): e.g. the join took effect after all and the host is
        # restarting; the next pass sees it halted and starts it.
        LOG.warning("Pool %s: starting the %s on %s after the failed join "
                    "failed too: %s", ctx.aggregate_id, _vm_name(p),
                    step.host, exc)
        return
    _record_running(ctx, step.host, op_id)


# -- ejecting with it ---------------------------------------------------------

def stop_for_maintenance(ctx, step):
    """Before host.evacuate of its host (a drain): record that poolmgr
    stops it, then shut it down through the master. The planner starts it
    there again once the host is enabled (member_compute_vm_steps)."""
    compute_vms.mark_stopped(step.host, step.params["compute_vm"])
    _shutdown(ctx, step, ctx.master_session, follow_master=True)


def eject_compute_host(ctx, step, observed):
    """eject_compute_vm = shutdown: clean shutdown, eject, forget the VM."""
    p = step.params
    if p.get("running"):
        _shutdown(ctx, step, ctx.master_session, follow_master=True,
                  entry=_Text(step.host, "VM.clean_shutdown(%s) on the "
                              "master, before pool.eject(%s)" % (
                                  _vm_name(p), step.host)))
    eject_steps.eject(ctx, step, observed)
    compute_vms.forget_gone(step.host)
    gone = _Text(step.host, "%s of %s is gone: pool.eject wiped its local "
                 "SR; %s now has no compute VM" % (_vm_name(p), step.host,
                                                   step.host))
    op_id = journal.start(ctx, "compute_vm_gone", gone)
    journal.finish(ctx, op_id, db_api.OP_SUCCEEDED)


def refuse_eject_compute_vm(ctx, step, observed):
    p = step.params
    params = [p.get("name_label") or "", p["compute_vm"]]
    journal.record_refusal(ctx, "eject", step, EJECT_REFUSED_CODE, params)
    db_api.upsert_member(ctx.aggregate_id, step.host,
                         state=db_api.MEMBER_ERROR,
                         error_code=EJECT_REFUSED_CODE, error_params=params)
    db_api.update_pool(ctx.aggregate_id, last_error_code=EJECT_REFUSED_CODE,
                       last_error=("%s: %s" % (step.host,
                                               step.reason))[:2000])


HANDLERS = {
    planner.STOP_COMPUTE_VM: stop_compute_vm,
    planner.JOIN_COMPUTE_HOST: join_compute_host,
    planner.START_COMPUTE_VM: start_compute_vm,
    planner.COMPUTE_VM_RUNNING: compute_vm_running,
    planner.EJECT_COMPUTE_HOST: eject_compute_host,
    planner.REFUSE_EJECT_COMPUTE_VM: refuse_eject_compute_vm,
}
