"""The storage and VM calls: SR.*, PBD.* and VM.* that change things.

``StorageVmCalls`` is a mixin of poolmgr.simulator.api's ``Api``, which
builds its message table from these methods; ``self.world`` is the Api's
World, and ``self._live`` (a host's liveness) comes from
poolmgr.simulator.api_pool's ``PoolCalls``, the Api's other mixin.
"""

import time

from poolmgr.simulator import model
from poolmgr.simulator.model import Failure
from poolmgr.simulator.model import NULL_REF


class StorageVmCalls:
    """SR.create/introduce/forget, PBD.create/plug/unplug/destroy and
    VM.create/start/start_on/clean_shutdown/hard_shutdown/destroy."""

    # -- storage --------------------------------------------------------------

    def sr_create(self, host, session, host_ref, device_config, physical_size,
                  name_label, name_description, sr_type, content_type,
                  shared, sm_config):
        world, db = self.world, host.db
        db.get("host", host_ref)
        sr_ref = db.add("SR", {
            "name_label": name_label, "name_description": name_description,
            "type": sr_type, "content_type": content_type,
            "shared": bool(shared), "physical_size": str(physical_size),
            "physical_utilisation": "0", "virtual_allocation": "0",
            "other_config": {}, "sm_config": dict(sm_config or {}),
            "tags": [], "VDIs": [], "is_tools_sr": False,
            "allowed_operations": [], "current_operations": {}})
        master_ref = db.pool()["master"]
        targets = ([m.host_ref() for m in world.members(db)]
                   if shared else [host_ref])
        for target in targets:
            config = dict(device_config or {})
            if shared and target == master_ref:
                config["SRmaster"] = "true"
            pbd_ref = db.add("PBD", {"host": target, "SR": sr_ref,
                                     "device_config": config,
                                     "currently_attached": False,
                                     "other_config": {}})
            try:
                world.plug(db, pbd_ref)
            except Failure:
                if target == host_ref:
                    raise
        return sr_ref

    def sr_introduce(self, host, session, uuid, name_label, name_description,
                     sr_type, content_type, shared, sm_config):
        db = host.db
        for ref, sr in db.tables["SR"].items():
            if sr["uuid"] == uuid:
                return ref
        return db.add("SR", {
            "uuid": uuid, "name_label": name_label,
            "name_description": name_description, "type": sr_type,
            "content_type": content_type, "shared": bool(shared),
            "physical_size": "0", "physical_utilisation": "0",
            "virtual_allocation": "0", "other_config": {},
            "sm_config": dict(sm_config or {}), "tags": [], "VDIs": [],
            "is_tools_sr": False, "allowed_operations": [],
            "current_operations": {}})

    def sr_forget(self, host, session, sr_ref):
        db = host.db
        db.get("SR", sr_ref)
        pbds = [r for r, p in db.tables["PBD"].items() if p["SR"] == sr_ref]
        if any(db.tables["PBD"][r]["currently_attached"] for r in pbds):
            raise Failure("SR_HAS_PBD", sr_ref)
        for ref in pbds:
            db.remove("PBD", ref)
        db.remove("SR", sr_ref)
        return ""

    def pbd_create(self, host, session, record):
        db = host.db
        db.get("host", record.get("host", NULL_REF))
        db.get("SR", record.get("SR", NULL_REF))
        return db.add("PBD", {"host": record["host"], "SR": record["SR"],
                              "device_config": dict(
                                  record.get("device_config") or {}),
                              "currently_attached": False,
                              "other_config": dict(
                                  record.get("other_config") or {})})

    # NOTE(xapi_pbd.ml): real xapi makes PBD.plug of an attached PBD and
    # PBD.unplug of a detached one no-ops; the simulator raises
    # DEVICE_ALREADY_ATTACHED / DEVICE_ALREADY_DETACHED as issue 3 asks, so
    # a client's double plug shows up in tests.
    def pbd_plug(self, host, session, pbd_ref):
        self.world.plug(host.db, pbd_ref)
        return ""

    def pbd_unplug(self, host, session, pbd_ref):
        db = host.db
        pbd = db.get("PBD", pbd_ref)
        if not pbd["currently_attached"]:
            raise Failure("DEVICE_ALREADY_DETACHED", pbd_ref)
        pbd["currently_attached"] = False
        db.touch(pbd_ref)
        return ""

    def pbd_destroy(self, host, session, pbd_ref):
        db = host.db
        if db.get("PBD", pbd_ref)["currently_attached"]:
            # NOTE(xapi_pbd.ml destroy): not DEVICE_ALREADY_ATTACHED.
            raise Failure("OPERATION_NOT_ALLOWED", "PBD is currently attached")
        db.remove("PBD", pbd_ref)
        return ""

    # -- VMs ------------------------------------------------------------------

    def vm_create(self, host, session, record):
        if not isinstance(record, dict) or "name_label" not in record:
            raise Failure("FIELD_TYPE_ERROR", "name_label")
        vm = {"name_label": "", "name_description": "",
              "is_a_template": False, "is_control_domain": False,
              "power_state": "Halted", "resident_on": NULL_REF,
              "affinity": NULL_REF, "domid": "-1", "other_config": {},
              "current_operations": {}, "allowed_operations": []}
        vm.update({k: v for k, v in record.items()
                   if k not in ("power_state", "resident_on", "domid",
                                "is_control_domain")})
        return host.db.add("VM", vm)

    def _power(self, db, vm_ref, expected):
        vm = db.get("VM", vm_ref)
        if vm["is_control_domain"]:
            raise Failure("OPERATION_NOT_ALLOWED",
                          "This operation is not allowed on a control domain")
        if vm["power_state"] != expected:
            raise Failure("VM_BAD_POWER_STATE", vm_ref, expected.lower(),
                          vm["power_state"].lower())
        return vm

    def vm_start(self, host, session, vm_ref, start_paused, force):
        db = host.db
        self._power(db, vm_ref, "Halted")
        # NOTE(xapi_vm_helpers.choose_host): the affinity host when it can
        # boot the VM, else any host that can (a VM on a local SR has one).
        vm = db.get("VM", vm_ref)
        candidates = [vm.get("affinity"), db.pool()["master"]] + sorted(
            db.tables["host"])
        first_error = None
        for candidate in candidates:
            if candidate not in db.tables["host"]:
                continue
            try:
                self._assert_can_boot_here(db, vm_ref, candidate)
            except Failure as failure:
                first_error = first_error or failure
                continue
            return self._boot(db, vm_ref, candidate, start_paused)
        raise first_error or Failure("NO_HOSTS_AVAILABLE")

    def vm_start_on(self, host, session, vm_ref, host_ref, start_paused,
                    force):
        db = host.db
        db.get("host", host_ref)
        # NOTE(xapi_vm.ml start_on): the power state is checked first
        # (assert_operation_valid), then assert_can_boot_here.
        self._power(db, vm_ref, "Halted")
        self._assert_can_boot_here(db, vm_ref, host_ref)
        return self._boot(db, vm_ref, host_ref, start_paused)

    def _assert_can_boot_here(self, db, vm_ref, host_ref):
        self.world.assert_can_boot_here(db, vm_ref, host_ref)
        # NOTE(xapi_vm_helpers.ml): memory is the last of these checks.
        self._assert_enough_memory(db, vm_ref, host_ref)

    def _boot(self, db, vm_ref, host_ref, start_paused):
        vm = db.get("VM", vm_ref)
        vm.update(power_state="Paused" if start_paused else "Running",
                  resident_on=host_ref, domid=str(len(db.tables["VM"])))
        for vbd_ref, vbd in db.tables["VBD"].items():
            if vbd["VM"] == vm_ref:
                vbd["currently_attached"] = True
                db.touch(vbd_ref)
        db.touch(vm_ref, host_ref)
        return ""

    def _halt(self, db, vm_ref):
        vm = db.get("VM", vm_ref)
        resident_on = vm["resident_on"]
        vm.update(power_state="Halted", resident_on=NULL_REF, domid="-1",
                  current_operations={})
        for vbd_ref, vbd in db.tables["VBD"].items():
            if vbd["VM"] == vm_ref:
                vbd["currently_attached"] = False
                db.touch(vbd_ref)
        db.touch(vm_ref, resident_on)

    def _running(self, db, vm_ref):
        vm = db.get("VM", vm_ref)
        if vm["power_state"] == "Halted":
            raise Failure("VM_BAD_POWER_STATE", vm_ref, "running", "halted")
        return self._power(db, vm_ref, vm["power_state"])

    def vm_clean_shutdown(self, host, session, vm_ref):
        world, db = self.world, host.db
        vm = self._running(db, vm_ref)
        delay = world.clean_shutdown_delays.get(vm["uuid"], 0.0)
        if delay <= 0:
            self._halt(db, vm_ref)
            return ""
        # NOTE(xenopsd): the guest takes ``delay`` seconds to honour the
        # request; meanwhile the VM runs with a current operation, and a
        # VM.hard_shutdown cancels this call's task (TASK_CANCELLED).
        task = "OpaqueRef:%s" % model.new_uuid()
        vm["current_operations"] = {task: "clean_shutdown"}
        db.touch(vm_ref)
        deadline = time.monotonic() + delay
        while True:
            if host.db is not db or db.tables["VM"].get(vm_ref) is not vm:
                raise Failure("TASK_CANCELLED", task)
            if task not in vm["current_operations"]:
                raise Failure("TASK_CANCELLED", task)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or world.stopped:
                break
            world.changed.wait(remaining)
        self._halt(db, vm_ref)
        return ""

    def vm_hard_shutdown(self, host, session, vm_ref):
        db = host.db
        self._running(db, vm_ref)
        self._halt(db, vm_ref)
        return ""

    def vm_destroy(self, host, session, vm_ref):
        db = host.db
        self._power(db, vm_ref, "Halted")
        # NOTE(xapi_vm_helpers.destroy): the VM's VBDs go with it, its VDIs
        # stay (VDI.destroy).
        for vbd_ref in [r for r, b in db.tables["VBD"].items()
                        if b["VM"] == vm_ref]:
            db.remove("VBD", vbd_ref)
        db.remove("VM", vm_ref)
        return ""
