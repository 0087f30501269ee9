"""The planner's compute VM rules (classic topology, issue 12).

A host whose nova-compute runs in a VM on its local SR cannot simply join
a pool or leave it: the join needs the VM shut down first and started
again in the pool, and the eject wipes the local SR, the VM with it.
poolmgr.plan.planner's ``plan_pool_changes`` and ``_eject_steps`` call these
functions. They build their steps from poolmgr.plan.steps, the
vocabulary both modules import, and never import poolmgr.plan.planner: the
import arrow points one way (planner -> planner_computevm ->
planner_steps).
"""

from poolmgr.plan import computevm
from poolmgr.plan.steps import (
    COMPUTE_VM_RUNNING, EJECT_COMPUTE_HOST, JOIN, JOIN_COMPUTE_HOST,
    MEMBER_ERROR, PREFLIGHT, REFUSE_EJECT, REFUSE_EJECT_COMPUTE_VM,
    START_COMPUTE_VM, STOP_COMPUTE_VM, WAIT_MEMBER, WAIT_STANDALONE, Step)
from poolmgr.plan import preflight


def _compute_vm_params(view, vm):
    return {"compute_vm": view.compute_vm,
            "name_label": (vm or {}).get("name_label")}


def join_compute_host_steps(view, pool, master, master_address, force):
    """A standalone host with a compute VM: stop it, join, start it there.

    Only a VM poolmgr stopped (``compute_vm_stopped``) is started again;
    one an operator shut down stays halted. When the join cannot happen
    (preflight fails) a VM poolmgr stopped is started again first.
    """
    snap = view.snapshot
    me = snap.master_ref
    vm_state, vm = computevm.state(snap, view.compute_vm, me)
    cvm = _compute_vm_params(view, vm)
    ours = vm_state == computevm.RUNNING or (vm_state == computevm.HALTED
                                      and view.compute_vm_stopped)
    steps = []
    failures = preflight.check_join(snap, pool, force=force,
                                    compute_vm_uuid=view.compute_vm)
    if failures:
        if vm_state == computevm.HALTED and view.compute_vm_stopped:
            steps.append(Step(START_COMPUTE_VM, view.name, reason=(
                "preflight fails"), params=dict(cvm, where="standalone",
                                                host_ref=me)))
        steps.append(Step(PREFLIGHT, view.name, failures=tuple(failures),
                          params={"master": master}))
        return steps
    steps.append(Step(PREFLIGHT, view.name, params={"master": master}))
    join = {"master_address": master_address, "master": master,
            "force": bool(force), "uuid": view.uuid}
    if vm_state == computevm.RUNNING:
        steps.append(Step(STOP_COMPUTE_VM, view.name, params=dict(
            cvm, where="standalone", purpose="join")))
    if ours:
        steps.append(Step(JOIN_COMPUTE_HOST, view.name, params=dict(
            join, host_ref=me, **cvm)))
    else:
        steps.append(Step(JOIN, view.name, params=join))
    steps.append(Step(WAIT_MEMBER, view.name, params={
        "uuid": view.uuid, "master": master}))
    if ours:
        steps.append(Step(START_COMPUTE_VM, view.name, params=dict(
            cvm, where="pool", master=master)))
    return steps


def member_compute_vm_steps(pool, view, master, member=None):
    """A live member whose compute VM poolmgr stopped: start it there.

    Not while the member is in error (a start xapi refused): the error
    shows xapi's code until an operator runs ``pool retry``."""
    if not view.compute_vm or not view.compute_vm_stopped:
        return []
    if (member or {}).get("state") == MEMBER_ERROR:
        return []
    vm_state, vm = computevm.state(pool, view.compute_vm, view.ref)
    cvm = _compute_vm_params(view, vm)
    if vm_state == computevm.HALTED:
        return [Step(START_COMPUTE_VM, view.name, params=dict(
            cvm, where="pool", host_ref=view.ref, master=master))]
    return [Step(COMPUTE_VM_RUNNING, view.name, params=dict(
        cvm, state=vm_state))]


def compute_vm_owed(pool, view):
    """poolmgr stopped the member's compute VM and it is still halted."""
    return bool(view.compute_vm and view.compute_vm_stopped) and \
        computevm.state(pool, view.compute_vm, view.ref)[0] == \
        computevm.HALTED


def eject_compute_host_steps(pool, view, master, mode):
    """Eject of a host with a compute VM (None: no special handling).

    The eject wipes the local SR the compute VM lives on. ``refuse``
    (default): the member goes to error naming the VM and the way out;
    ``shutdown``: clean shutdown, eject, and poolmgr forgets the VM.
    """
    vm_state, vm = computevm.state(pool, view.compute_vm, view.ref)
    if vm_state in (computevm.MISSING, computevm.RUNNING_ELSEWHERE):
        return None
    others = sorted(v.get("name_label", "?")
                    for v in pool.resident_vms(view.ref)
                    if v.get("uuid") != view.compute_vm)
    if others:
        return [Step(REFUSE_EJECT, view.name, params={"vms": others},
                     reason="VMs still resident: %s" % ", ".join(others))]
    cvm = _compute_vm_params(view, vm)
    if mode != computevm.EJECT_SHUTDOWN:
        return [Step(REFUSE_EJECT_COMPUTE_VM, view.name, params=dict(
            cvm, power_state=vm.get("power_state")), reason=(
            "pool.eject would destroy its compute VM %s (%s): its disk is on "
            "%s's local SR, which eject wipes. Move nova-compute off %s and "
            "run 'poolmgr-manage host register %s URL --compute-vm none', "
            "or set [xenserver] eject_compute_vm = shutdown to shut it down "
            "and let the eject destroy it; then 'poolmgr-manage pool retry'"
            % (cvm["name_label"], view.compute_vm, view.name, view.name,
               view.name)))]
    if not pool.host_live(view.ref):
        return None
    return [Step(EJECT_COMPUTE_HOST, view.name, params=dict(
        cvm, host_ref=view.ref, master=master, uuid=view.uuid,
        running=vm_state == computevm.RUNNING)),
        Step(WAIT_STANDALONE, view.name, params={"uuid": view.uuid})]
