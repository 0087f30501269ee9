"""Where a host's compute VM stands (the classic topology, issue 12).

Pure: reads a ``records.PoolSnapshot``. In the classic Nova-on-XenServer
deployment nova-compute runs in a VM on the host it manages; xapi refuses
pool.join while it runs (JOINING_HOST_CANNOT_HAVE_RUNNING_VMS) and
pool.eject destroys it (its disk lives on the local SR, which eject
wipes). The planner uses these facts to shut it down around a join and to
start it again on the same host, and to refuse (or, if configured, do)
an eject.
"""

RUNNING = "running"                  # Running, resident on that host
RUNNING_ELSEWHERE = "running_elsewhere"
HALTED = "halted"
OTHER = "other"                      # Paused or Suspended: left alone
MISSING = "missing"                  # no VM with that uuid in the pool

# [xenserver] eject_compute_vm
EJECT_REFUSE = "refuse"
EJECT_SHUTDOWN = "shutdown"


def find(snapshot, uuid):
    """(ref, record) of the VM with that uuid, or (None, None)."""
    if snapshot is None or not uuid:
        return None, None
    for ref, vm in snapshot.vms.items():
        if vm.get("uuid") == uuid:
            return ref, vm
    return None, None


def state(snapshot, uuid, host_ref):
    """(one of the states above, the VM's record or {})."""
    _, vm = find(snapshot, uuid)
    if vm is None:
        return MISSING, {}
    power = vm.get("power_state")
    if power == "Running":
        return (RUNNING if vm.get("resident_on") == host_ref
                else RUNNING_ELSEWHERE), vm
    if power == "Halted":
        return HALTED, vm
    return OTHER, vm


def annotate(observed, inventory, eject_mode=EJECT_REFUSE):
    """Copy each observed host's registered compute VM onto its view."""
    observed.eject_compute_vm = eject_mode
    for name, view in observed.hosts.items():
        row = inventory.get(name) or {}
        if row.get("compute_vm_uuid"):
            view.compute_vm = row["compute_vm_uuid"]
            view.compute_vm_stopped = \
                row.get("compute_vm_stopped_at") is not None
    return observed
