"""Templates, clones and live migration: VM.clone/provision,
VM.assert_can_boot_here, VM.pool_migrate, VDI.destroy.

``MigrateCalls`` is a mixin of poolmgr.simulator.api's ``Api``;
``self._assert_can_boot_here`` and ``self._power`` come from
poolmgr.simulator.api_storage_vm's ``StorageVmCalls``. Facts from
reference/operations.md §4.1 and reference/xapi.md §6 ("Migration"):
xen-api's ``xapi_vm.ml`` (clone, provision), ``xapi_vm_helpers.ml``
(assert_can_boot_here), ``message_forwarding.ml`` / ``xapi_vm_migrate.ml``
(pool_migrate) and ``datamodel_errors.ml`` (the codes).
"""

import time

from poolmgr.simulator import model
from poolmgr.simulator.model import Failure
from poolmgr.simulator.model import NULL_REF


class MigrateCalls:
    """VM.clone, VM.provision, VM.assert_can_boot_here, VM.pool_migrate and
    VDI.destroy."""

    MIGRATE_MESSAGES = {
        "VM.clone": "vm_clone",
        "VM.provision": "vm_provision",
        "VM.assert_can_boot_here": "vm_assert_can_boot_here",
        "VM.pool_migrate": "vm_pool_migrate",
        "VDI.destroy": "vdi_destroy",
    }

    def migrate_messages(self):
        return {name: getattr(self, attr)
                for name, attr in self.MIGRATE_MESSAGES.items()}

    # -- the memory check assert_can_boot_here ends with --------------------

    def _assert_enough_memory(self, db, vm_ref, host_ref):
        needed = int(db.get("VM", vm_ref).get("memory_static_max") or 0)
        available = max(self.world.free_memory(db, host_ref, but=vm_ref), 0)
        if needed > available:
            # NOTE(datamodel_errors.ml): [needed; available], in bytes.
            raise Failure("HOST_NOT_ENOUGH_FREE_MEMORY", needed, available)

    # -- templates and clones -------------------------------------------------

    def vm_clone(self, host, session, vm_ref, new_name):
        """A copy-on-write clone: the VM record and a clone of each disk on
        the disk's own SR (xapi_vm_clone.ml, Disk_op_clone)."""
        db = host.db
        source = self._power(db, vm_ref, "Halted")
        record = model._copy_record(source)
        record.pop("uuid", None)
        record.update(name_label=new_name, power_state="Halted",
                      resident_on=NULL_REF, domid="-1",
                      current_operations={}, allowed_operations=[])
        new_vm = db.add("VM", record)
        for vbd in [dict(b) for b in db.tables["VBD"].values()
                    if b["VM"] == vm_ref]:
            vdi = db.tables["VDI"].get(vbd["VDI"])
            new_vdi = vbd["VDI"]
            if vdi is not None:
                copy = model._copy_record(vdi)
                copy.pop("uuid", None)
                new_vdi = db.add("VDI", copy)
            vbd.update(VM=new_vm, VDI=new_vdi, currently_attached=False)
            vbd.pop("uuid", None)
            db.add("VBD", vbd)
        return new_vm

    def vm_provision(self, host, session, vm_ref):
        """NOTE(xapi_vm.ml provision): it first sets is_a_template false,
        then creates the disks the template's other_config "disks" asks for;
        the simulator's templates carry their disks already."""
        db = host.db
        vm = self._power(db, vm_ref, "Halted")
        vm["is_a_template"] = False
        db.touch(vm_ref)
        return ""

    # -- live migration -------------------------------------------------------

    def vm_assert_can_boot_here(self, host, session, vm_ref, host_ref):
        db = host.db
        db.get("VM", vm_ref)
        db.get("host", host_ref)
        self._assert_can_boot_here(db, vm_ref, host_ref)
        return ""

    def vm_pool_migrate(self, host, session, vm_ref, host_ref, options):
        """Move a running VM to another member of its pool, live.

        NOTE(message_forwarding.ml): the power state and the operation
        lock come first, then reserve_memory_for_vm runs
        assert_can_boot_here on the target; the VM then runs on the source
        for the migration's time (``sim.set_migrate_delay``) with a
        pool_migrate current operation, and is resident on the target
        once the call returns.
        """
        world, db = self.world, host.db
        vm = db.get("VM", vm_ref)
        db.get("host", host_ref)
        if vm["is_a_template"]:
            raise Failure("VM_IS_TEMPLATE", vm_ref)
        if vm["is_control_domain"]:
            raise Failure("OPERATION_NOT_ALLOWED",
                          "This operation is not allowed on a control domain")
        if vm["power_state"] != "Running":
            raise Failure("VM_BAD_POWER_STATE", vm_ref, "running",
                          vm["power_state"].lower())
        if vm["current_operations"]:
            raise Failure("OTHER_OPERATION_IN_PROGRESS", "VM", vm_ref)
        if vm["resident_on"] != host_ref:
            self._assert_can_boot_here(db, vm_ref, host_ref)
        task = "OpaqueRef:%s" % model.new_uuid()
        vm["current_operations"] = {task: "pool_migrate"}
        db.touch(vm_ref)
        deadline = time.monotonic() + world.migrate_delay
        try:
            while True:
                if host.db is not db or db.tables["VM"].get(vm_ref) is not vm:
                    raise Failure("TASK_CANCELLED", task)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or world.stopped:
                    break
                world.changed.wait(remaining)
        finally:
            vm["current_operations"] = {}
        source = vm["resident_on"]
        vm.update(resident_on=host_ref, domid=str(len(db.tables["VM"])))
        db.touch(vm_ref, source, host_ref)
        return ""

    # -- disks ----------------------------------------------------------------

    def vdi_destroy(self, host, session, vdi_ref):
        """NOTE(xapi_vdi.ml): refused while a VBD of it is attached
        (VDI_IN_USE); the VDI's VBDs go with it."""
        db = host.db
        db.get("VDI", vdi_ref)
        vbds = [r for r, b in db.tables["VBD"].items() if b["VDI"] == vdi_ref]
        if any(db.tables["VBD"][r]["currently_attached"] for r in vbds):
            raise Failure("VDI_IN_USE", vdi_ref, "destroy")
        for ref in vbds:
            db.remove("VBD", ref)
        db.remove("VDI", vdi_ref)
        return ""
