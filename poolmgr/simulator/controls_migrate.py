"""Set-up for templates and live migration (the ``sim.*`` namespace).

``MigrateControls`` is a mixin of poolmgr.simulator's ``Simulator``:
``add_template`` puts a VM template with a disk on a pool's SR (as an
operator imports one), ``set_migrate_delay`` (controls_vm) sets how long a
VM.pool_migrate takes, ``set_memory_free`` how much memory a host has for
guests (HOST_NOT_ENOUGH_FREE_MEMORY), ``vms_named`` what a test looks up.
"""

from poolmgr.simulator.model import NULL_REF

DEFAULT_TEMPLATE_MEMORY = 256 << 20


class MigrateControls:

    MIGRATE_CONTROL = ("add_template", "set_memory_free", "vms_named")

    def add_template(self, host, name_label, sr=None,
                     memory=DEFAULT_TEMPLATE_MEMORY):
        """A halted VM template ``name_label`` in ``host``'s pool, its disk
        on SR ``sr`` (name_label or uuid; default: the pool's first shared
        SR, else its default SR). Returns the template's uuid."""
        h = self.world.host(host)
        with self.world.lock:
            db = h.db
            sr_ref = None
            for ref, rec in db.tables["SR"].items():
                if sr is None and rec["shared"] or sr in (rec["name_label"],
                                                         rec["uuid"]):
                    sr_ref = ref
                    break
            if sr_ref is None and sr is None:
                sr_ref = db.pool()["default_SR"]
            if sr_ref is None:
                raise KeyError("no SR %s in the pool of %s" % (sr, h.name))
            vm_ref = db.add("VM", {
                "name_label": name_label, "name_description": "",
                "is_a_template": True, "is_control_domain": False,
                "power_state": "Halted", "resident_on": NULL_REF,
                "affinity": NULL_REF, "domid": "-1",
                "memory_static_max": str(int(memory)), "VCPUs_max": "1",
                "PV_bootloader": "pygrub", "other_config": {},
                "current_operations": {}, "allowed_operations": []})
            vdi_ref = db.add("VDI", {
                "name_label": "%s root" % name_label, "name_description": "",
                "SR": sr_ref, "type": "system",
                "virtual_size": str(1 << 30),
                "physical_utilisation": str(64 << 20), "sharable": False,
                "read_only": False, "other_config": {}, "sm_config": {},
                "tags": []})
            db.add("VBD", {"VM": vm_ref, "VDI": vdi_ref, "device": "xvda",
                           "userdevice": "0", "bootable": True, "mode": "RW",
                           "type": "Disk", "currently_attached": False,
                           "other_config": {}})
            return db.tables["VM"][vm_ref]["uuid"]

    def set_memory_free(self, host, memory_bytes):
        """What guests may still use on ``host`` with none running: its
        memory_total becomes that plus what its control domain holds."""
        h = self.world.host(host)
        with self.world.lock:
            db = h.db
            metrics_ref = h.host_record()["metrics"]
            host_ref = h.host_ref()
            dom0 = sum(self.world.vm_memory(v)
                       for v in db.tables["VM"].values()
                       if v["is_control_domain"]
                       and v["resident_on"] == host_ref)
            db.tables["host_metrics"][metrics_ref].update(
                memory_total=str(int(memory_bytes) + dom0),
                memory_free=str(int(memory_bytes)))
            db.touch(metrics_ref)

    def vms_named(self, host, name_label):
        """[{uuid, power_state, is_a_template, resident_on (host name or
        ""), other_config, vdis (uuids)}] of the VMs so named in
        ``host``'s pool."""
        h = self.world.host(host)
        with self.world.lock:
            db = h.db
            names = {m.host_ref(): m.name for m in self.world.members(db)}
            found = []
            for ref, vm in db.tables["VM"].items():
                if vm["name_label"] != name_label:
                    continue
                vdis = [db.tables["VDI"][b["VDI"]]["uuid"]
                        for b in db.tables["VBD"].values()
                        if b["VM"] == ref and b["VDI"] in db.tables["VDI"]]
                found.append({"uuid": vm["uuid"],
                              "power_state": vm["power_state"],
                              "is_a_template": vm["is_a_template"],
                              "resident_on": names.get(vm["resident_on"],
                                                       ""),
                              "other_config": dict(vm["other_config"]),
                              "vdis": vdis})
            return found
