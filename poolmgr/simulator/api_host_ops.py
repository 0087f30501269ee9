"""Host maintenance calls: evacuation, its blockers, and the reboot.

``HostOpsCalls`` is a mixin of poolmgr.simulator.api's ``Api``
(``host.enable`` and ``host.disable`` are poolmgr.simulator.api_pool's).
The facts are xen-api's ``xapi_host.ml`` as summarised in
``reference/operations.md`` §2.1: the evacuation plan
(``compute_evacuation_plan_no_wlb``) is computed by the world
(poolmgr.simulator.world ``World.evacuation_plan``) so that other calls
moving VMs share it; the moves go through ``World.move_vm``.
"""

import time

from poolmgr.simulator.model import Failure
from poolmgr.simulator.model import new_uuid


class HostOpsCalls:
    """host.get_vms_which_prevent_evacuation, host.assert_can_evacuate,
    host.evacuate and host.reboot."""

    def get_vms_which_prevent_evacuation(self, host, session, host_ref):
        host.db.get("host", host_ref)
        _, blockers = self.world.evacuation_plan(host.db, host_ref)
        return {vm_ref: list(error) for vm_ref, error in blockers.items()}

    def assert_can_evacuate(self, host, session, host_ref):
        host.db.get("host", host_ref)
        _, blockers = self.world.evacuation_plan(host.db, host_ref)
        if blockers:
            # NOTE(operations.md §2.1): the "Old Miami style" encoding, one
            # "code,params" per blocker joined with "|".
            raise Failure("CANNOT_EVACUATE_HOST", "|".join(
                ",".join(error) for error in blockers.values()))
        return ""

    def host_evacuate(self, host, session, host_ref):
        world, db = self.world, host.db
        db.get("host", host_ref)
        plan, blockers = world.evacuation_plan(db, host_ref)
        if blockers:
            # NOTE(operations.md §2.1): host.evacuate raises the first
            # error it finds, as the error itself (not CANNOT_EVACUATE_HOST).
            raise Failure(*next(iter(blockers.values())))
        for vm_ref, target in plan.items():
            vm = db.tables["VM"].get(vm_ref)
            if vm is None or vm["resident_on"] != host_ref:
                continue
            # NOTE(xapi_host.ml): the plan runs as Async.VM.pool_migrate
            # (live); each move takes the world's migrate_delay, during
            # which the VM shows the pool_migrate operation.
            task = "OpaqueRef:%s" % new_uuid()
            vm["current_operations"] = {task: "pool_migrate"}
            db.touch(vm_ref)
            deadline = time.monotonic() + world.migrate_delay
            while not world.stopped:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                world.changed.wait(remaining)
            if host.db is not db or db.tables["VM"].get(vm_ref) is not vm:
                raise Failure("INTERNAL_ERROR", "evacuate: the pool changed")
            vm["current_operations"] = {}
            world.move_vm(db, vm_ref, target)
        left = [r for r, v in db.tables["VM"].items()
                if v["resident_on"] == host_ref and not v["is_control_domain"]
                and v["power_state"] != "Halted"]
        if left:
            raise Failure("INTERNAL_ERROR",
                          "evacuate: %d VMs are still resident" % len(left))
        return ""

    def host_reboot(self, host, session, host_ref):
        world, db = self.world, host.db
        record = db.get("host", host_ref)
        target = self._member(host, host_ref)
        # NOTE(operations.md §2.1 assert_bacon_mode): the host must be
        # disabled and run no guest.
        if record["enabled"]:
            raise Failure("HOST_NOT_DISABLED")
        for vm_ref, vm in db.tables["VM"].items():
            if (vm["resident_on"] == host_ref and not vm["is_control_domain"]
                    and vm["power_state"] != "Halted"):
                raise Failure("HOST_IN_USE", host_ref, "vm", vm_ref)
        if target is None or not target.serving:
            raise Failure("HOST_OFFLINE", host_ref)
        # The reply goes out before the host goes down.
        world.later(0.05, world.reboot, target)
        return ""
