"""The simulator's VM and host-maintenance controls (``sim.*``).

``VmControls`` is a mixin of poolmgr.simulator's ``Simulator`` (its
``world`` and ``api``): guests to evacuate, the memory the evacuation's
bin-pack sees, and how host.reboot and host.evacuate behave.
"""


class VmControls:
    """create_running_vm, set_memory, set_reboot_hangs, set_reboot_delay,
    set_migrate_delay and boot_count."""

    def create_running_vm(self, host, name_label="vm", memory_mib=0,
                          disk_sr=None):
        """A guest VM running on ``host``; returns its uuid. ``memory_mib``:
        its memory_static_max; ``disk_sr``: an SR (name_label or uuid; the
        host's "Local storage" pins it there) holding a disk of it."""
        h = self.world.host(host)
        with self.world.lock:
            db = h.db
            ref = self.api.vm_create(h, None, {
                "name_label": name_label,
                "memory_static_max": str(int(memory_mib) << 20)})
            if disk_sr:
                sr_ref = next(
                    r for r, sr in db.tables["SR"].items()
                    if disk_sr in (sr["name_label"], sr["uuid"]) and any(
                        p["SR"] == r and p["host"] == h.host_ref()
                        for p in db.tables["PBD"].values()))
                vdi_ref = db.add("VDI", {
                    "name_label": "%s disk" % name_label,
                    "name_description": "", "SR": sr_ref, "type": "user",
                    "virtual_size": str(10 << 30),
                    "physical_utilisation": "0", "sharable": False,
                    "read_only": False, "other_config": {}, "sm_config": {},
                    "tags": []})
                db.add("VBD", {"VM": ref, "VDI": vdi_ref, "device": "xvda",
                               "userdevice": "0", "bootable": True,
                               "mode": "RW", "type": "Disk",
                               "currently_attached": False,
                               "other_config": {}})
            self.api.vm_start_on(h, None, ref, h.host_ref(), False, False)
            return db.tables["VM"][ref]["uuid"]

    def set_memory(self, host, total_mib):
        """The host's host_metrics.memory_total (the evacuation bin-pack
        takes every running VM's memory_static_max off it)."""
        h = self.world.host(host)
        with self.world.lock:
            metrics_ref = h.host_record()["metrics"]
            h.db.tables["host_metrics"][metrics_ref]["memory_total"] = str(
                int(total_mib) << 20)
            h.db.touch(metrics_ref)

    def set_reboot_hangs(self, host, hangs=True):
        """host.reboot of ``host`` never comes back (it stays offline)."""
        self.world.host(host).reboot_hangs = bool(hangs)

    def set_reboot_delay(self, seconds):
        self.world.reboot_delay = float(seconds)

    def set_migrate_delay(self, seconds):
        self.world.migrate_delay = float(seconds)

    def boot_count(self, host):
        """How many host.reboot of ``host`` came back."""
        return self.world.host(host).boot_count
