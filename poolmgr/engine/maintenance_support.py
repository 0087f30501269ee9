"""What the maintenance phases share (poolmgr.engine.maintenance).

The operation's vocabulary (phases, ``describe``), its bookkeeping (the
next phase, the end, a stop with its reason and way out, a transient
error's backoff), the evacuation blockers as an operator reads them, and
the Nova side (the nova-compute service of a drained host).
"""

from oslo_config import cfg
from oslo_log import log as logging

from poolmgr.conf import nova as nova_conf
from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr.plan import planner
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

# What a phase returns as the pass's pending (engine.passes.ACT, WAIT;
# passes imports this module, so the strings are repeated here).
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


class Call:
    """A journal entry's text and host (journal.mutate reads these)."""

    def __init__(self, host, text):
        self.host = host
        self._text = text

    def describe(self, master=None):
        return self._text


class Failed(Exception):
    """The operation stops: ``reason`` (with the way out)."""

    def __init__(self, reason, code=None, params=()):
        self.code = code
        self.params = list(params)
        super().__init__(reason)


# -- bookkeeping --------------------------------------------------------------

def advance(ctx, op, phase, host=None, **detail):
    fields = {"phase": phase}
    if host is not None:
        fields["current_host"] = host
    # A new phase starts its transient-error count afresh.
    fields["detail"] = dict(op.get("detail") or {}, attempts=0, **detail)
    ctx.fence()
    db_api.update_maintenance(op["id"], **fields)
    LOG.info("Pool %s: maintenance %s: %s -> %s", ctx.aggregate_id,
             op["id"], host or op["current_host"], phase)
    return ACT, 0.0


def finish(ctx, op):
    ctx.fence()
    db_api.update_maintenance(op["id"], status=db_api.MAINT_SUCCEEDED,
                              phase=DONE, reason=None)
    LOG.info("Pool %s: maintenance %s (%s) done", ctx.aggregate_id,
             op["id"], op["kind"])
    return ACT, 0.0


def fail(ctx, op, reason, code=None, params=()):
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


def transient(ctx, op, exc):
    attempts = int((op.get("detail") or {}).get("attempts") or 0) + 1
    if attempts >= ctx.conf.reconciler.max_attempts:
        return fail(ctx, op, "%s of %s failed %d times: %s%s" % (
            op["phase"], op["current_host"], attempts, exc, way_out(op)),
            exc.code, exc.params)
    db_api.update_maintenance(op["id"], detail=dict(
        op.get("detail") or {}, attempts=attempts))
    due_in = context.backoff(ctx.conf, attempts)
    ctx.release_fields["reasons"] = [
        "%s; transient xapi error (attempt %d), trying again in %.1f s: %s"
        % (describe(op), attempts, due_in, exc)]
    return WAIT, due_in


def way_out(op):
    host = op["current_host"]
    if op["kind"] == db_api.MAINT_UNDRAIN:
        return "; run 'poolmgr-manage host undrain %s' again" % host
    return ("; %s stays disabled: fix the cause, then 'poolmgr-manage host "
            "drain %s' (or 'pool rolling-reboot' again), or 'poolmgr-manage "
            "host undrain %s' to put it back in service" % (host, host, host))


def member(ctx, observed, host):
    if observed.pool is None:
        raise errors.XapiError("CONNECTION_FAILED", [
            observed.master_problem or "no pool master reachable"])
    view = observed.hosts.get(host)
    if view is None or view.status != planner.IN_POOL:
        raise Failed("%s is not a member of this pool (%s)" % (
            host, view.status if view else "not in the aggregate"))
    return view


def call(ctx, kind, host, text, method, *args):
    return journal.mutate(ctx, kind, Call(host, text),
                          lambda: ctx.master_session.call(method, *args))


def set_member(ctx, host, state):
    db_api.upsert_member(ctx.aggregate_id, host, state=state,
                         error_code=None, error_params=None)


# -- blockers -----------------------------------------------------------------

def blockers(ctx, observed, host):
    """[line] for every VM that prevents the evacuation of ``host`` (its
    own compute VM excepted: poolmgr shuts it down, issue 12's rule)."""
    view = member(ctx, observed, host)
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


def refuse_blockers(op, lines, host, before):
    raise Failed("%s cannot be evacuated, %s: %s%s" % (
        host, before, "; ".join(line for _, _, line in lines),
        way_out(op)), lines[0][0], lines[0][1])


# -- Nova ---------------------------------------------------------------------

def _nova_configured(conf):
    # NOTE(lean): poolmgr.nova imports keystoneauth1; the reconciler worker
    # loads it only when a drain first needs Nova (test_daemon_lean).
    from poolmgr.nova import client as nova
    try:
        return nova.configured(conf)
    except cfg.NoSuchOptError:
        nova_conf.register_keystoneauth(conf)
        return nova.configured(conf)


def nova_service(ctx, host, enabled):
    """The host's nova-compute service disabled (a drain) or enabled,
    when [nova] is configured; journaled like an xapi call."""
    if not _nova_configured(ctx.conf):
        return
    from poolmgr.nova import client as nova
    text = ("PUT /os-services/<id of nova-compute on %s> status=%s%s" % (
        host, "enabled" if enabled else "disabled",
        "" if enabled else ", disabled_reason=%r" % NOVA_REASON))
    kind = "nova_service_%s" % ("enable" if enabled else "disable")
    ctx.fence(doing=text)
    op_id = journal.start(ctx, kind, Call(host, text))
    try:
        nova.NovaClient(ctx.conf).set_compute_service(
            host, enabled, None if enabled else NOVA_REASON)
    except nova.NovaError as exc:
        journal.finish(ctx, op_id, db_api.OP_FAILED, NOVA_ERROR_CODE,
                       [str(exc)[:200]], kind=kind)
        raise Failed("Nova: %s; fix [nova] or Nova, then run the command "
                     "again" % exc, NOVA_ERROR_CODE, [str(exc)[:200]])
    if not journal.finish(ctx, op_id, db_api.OP_SUCCEEDED, kind=kind):
        raise context.LeaseLost()
