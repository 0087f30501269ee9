"""The simulated world: every host, sessions, time, and the pool's wiring.

``World`` holds every simulated host (poolmgr.simulator.model's
``SimHost``), the lock that serialises them, the sessions and the timers
of xapi's restarts, and what xapi does on its own around a membership
change (plugging PBDs, a new slave's first start). Section numbers in
NOTEs point to ``reference/xapi.md``.
"""

import threading
import time

from poolmgr.simulator.model import Failure
from poolmgr.simulator.model import new_ref
from poolmgr.simulator.model import SimHost


class World:
    """Every simulated host, the lock that serialises them, the call log."""

    def __init__(self, username="root", password="", join_delay=10.0,
                 eject_delay=10.0, address_base=10, name_prefix="xs",
                 compute_vms=False, reboot_delay=5.0, migrate_delay=0.5):
        self.username = username
        self.password = password
        self.join_delay = join_delay
        self.eject_delay = eject_delay
        self.address_base = address_base
        self.name_prefix = name_prefix
        self.compute_vms = compute_vms
        # host.reboot takes reboot_delay seconds; one VM's move of a
        # each VM moved by host.evacuate or VM.pool_migrate takes
        # migrate_delay seconds (sim.set_migrate_delay).
        self.reboot_delay = reboot_delay
        self.migrate_delay = migrate_delay
        # vm uuid -> seconds its guest takes to honour VM.clean_shutdown
        self.clean_shutdown_delays = {}
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.hosts = []
        self.sessions = {}   # ref -> (SimHost, boot_id, local_only)
        self.call_log = []
        self.timers = []
        self.on_restart = None  # callback(SimHost, down: bool)
        self.stopped = False

    def add_host(self):
        with self.lock:
            host = SimHost(self, len(self.hosts) + 1)
            host.first_boot()
            if self.compute_vms:
                host.install_compute_vm()
            self.hosts.append(host)
            return host

    def host(self, key):
        """A SimHost by 1-based index, name_label, uuid or address."""
        if isinstance(key, SimHost):
            return key
        if isinstance(key, dict):
            key = key.get("name_label")
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            index = int(key)
            if 1 <= index <= len(self.hosts):
                return self.hosts[index - 1]
        for host in self.hosts:
            if key in (host.name, host.uuid, host.address):
                return host
        raise KeyError("no simulated host %r" % (key,))

    def by_address(self, address):
        for host in self.hosts:
            if host.address == address or host.name == address:
                return host
        return None

    # -- time -------------------------------------------------------------

    def later(self, delay, fn, *args):
        if self.stopped:
            return
        timer = threading.Timer(max(delay, 0.0), self._run_later,
                                args=(fn,) + args)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def _run_later(self, fn, *args):
        with self.lock:
            if self.stopped:
                return
            fn(*args)

    def restart(self, host, delay, then):
        """xapi's fuse: the host drops off the network, then comes back."""
        host.restarting = True
        host.boot_id += 1
        if self.on_restart:
            self.on_restart(host, True)

        def back():
            host.restarting = False
            host.boot_id += 1
            then()
            if self.on_restart and host.online:
                self.on_restart(host, False)
        self.later(delay, back)

    # -- sessions -----------------------------------------------------------

    def check_credentials(self, username, password):
        if username != self.username or password != self.password:
            raise Failure("SESSION_AUTHENTICATION_FAILED", username,
                          "Authentication failure")

    def login(self, host, username, password, local_only=False):
        if host.role == "slave" and not local_only:
            # NOTE(§4): only the master serves the API over TCP.
            raise Failure("HOST_IS_SLAVE", host.master.address)
        self.check_credentials(username, password)
        ref = new_ref()
        self.sessions[ref] = (host, host.boot_id, local_only)
        return ref

    def session_host(self, host, ref):
        entry = self.sessions.get(ref)
        if entry is None or entry[0] is not host or entry[1] != host.boot_id:
            raise Failure("SESSION_INVALID", ref)
        if host.role == "slave" and not entry[2]:
            raise Failure("HOST_IS_SLAVE", host.master.address)
        return entry

    # -- membership changes -------------------------------------------------

    def set_live(self, host, live):
        if host.db is not None:
            self.set_live_in(host.db, host, live)

    @staticmethod
    def set_live_in(db, host, live):
        """``host``'s host_metrics.live as the pool ``db`` records it."""
        ref = db.host_ref_of(host)
        if ref is None:
            return
        metrics_ref = db.get("host", ref)["metrics"]
        metrics = db.tables["host_metrics"].get(metrics_ref)
        if metrics is not None and metrics["live"] != live:
            metrics["live"] = live
            db.touch(metrics_ref)

    def members(self, db):
        return [h for h in self.hosts if h.db is db]

    def plug_failure(self, host, sr_rec):
        for key in (sr_rec["name_label"], sr_rec["uuid"], "*"):
            if key in host.pbd_plug_failures:
                return host.pbd_plug_failures[key]
        return None

    def plug(self, db, pbd_ref):
        pbd = db.get("PBD", pbd_ref)
        if pbd["currently_attached"]:
            raise Failure("DEVICE_ALREADY_ATTACHED", pbd_ref)
        sr = db.get("SR", pbd["SR"])
        owner = next((h for h in self.members(db)
                      if h.host_ref() == pbd["host"]), None)
        if owner is not None:
            if not owner.serving:
                raise Failure("HOST_OFFLINE", pbd["host"])
            code = self.plug_failure(owner, sr)
            if code:
                raise Failure(code, "simulated plug failure of SR %s on %s"
                              % (sr["name_label"], owner.name))
        pbd["currently_attached"] = True
        db.touch(pbd_ref)

    def welcome_slave(self, master, joiner):
        """The new slave's first start (create_storage.ml, §2.1 step 11)."""
        db = master.db
        joiner_ref = joiner.host_ref()
        for pbd_ref, pbd in list(db.tables["PBD"].items()):
            if pbd["host"] == joiner_ref and not pbd["currently_attached"]:
                try:
                    self.plug(db, pbd_ref)
                except Failure:
                    pass
        master_ref = master.host_ref()
        if "nosync" != db.pool()["other_config"].get("sync_create_pbds"):
            for sr_ref, sr in list(db.tables["SR"].items()):
                if not sr["shared"]:
                    continue
                on_master = [p for p in db.tables["PBD"].values()
                             if p["SR"] == sr_ref and p["host"] == master_ref]
                if not on_master or any(
                        p["SR"] == sr_ref and p["host"] == joiner_ref
                        for p in db.tables["PBD"].values()):
                    continue
                config = {k: v
                          for k, v in on_master[0]["device_config"].items()
                          if k != "SRmaster"}
                pbd_ref = db.add("PBD", {
                    "host": joiner_ref, "SR": sr_ref, "device_config": config,
                    "currently_attached": False, "other_config": {}})
                try:
                    self.plug(db, pbd_ref)
                except Failure:
                    pass
        # A joiner set offline inside its restart window stays not live.
        self.set_live(joiner, joiner.online)

    # -- VMs on the move: boot checks, memory, evacuation, reboot ------------

    @staticmethod
    def host_live(db, ref):
        metrics = db.tables["host_metrics"].get(db.get("host", ref)["metrics"])
        return bool(metrics and metrics["live"])

    def assert_can_boot_here(self, db, vm_ref, host_ref):
        """xapi's assert_can_boot_here without the memory check."""
        # NOTE(reference/xapi.md §6 "Migration"): assert_can_boot_here
        # checks the host is live, then enabled, then that every SR with a
        # disk of the VM has an attached PBD on that host.
        if not self.host_live(db, host_ref):
            raise Failure("HOST_NOT_LIVE")
        if not db.get("host", host_ref)["enabled"]:
            raise Failure("HOST_DISABLED", host_ref)
        for sr_ref in db.vm_srs(vm_ref):
            if not any(p["SR"] == sr_ref and p["host"] == host_ref
                       and p["currently_attached"]
                       for p in db.tables["PBD"].values()):
                raise Failure("VM_REQUIRES_SR", vm_ref, sr_ref)

    @staticmethod
    def vm_memory(vm):
        return int(vm.get("memory_static_max") or 0)

    def free_memory(self, db, host_ref, but=None):
        """memory_total less what every VM running there holds (dom0 too),
        ``but`` left out (a VM asking to move there).

        NOTE(memory): one memory model for starts, migrations and
        evacuations: each domain that is not halted holds its
        memory_static_max, as xapi's Memory_check counts a VM without
        ballooning.
        """
        metrics = db.tables["host_metrics"].get(
            db.get("host", host_ref)["metrics"]) or {}
        used = sum(self.vm_memory(v) for ref, v in db.tables["VM"].items()
                   if ref != but and v["resident_on"] == host_ref
                   and v["power_state"] != "Halted")
        return int(metrics.get("memory_total") or 0) - used

    def evacuation_plan(self, db, host_ref):
        """({vm ref: target host ref}, {vm ref: [code, params...]}).

        NOTE(operations.md §2.1, compute_evacuation_plan_no_wlb): targets
        are the other enabled (and live) hosts; none: NO_HOSTS_AVAILABLE for
        every VM; each VM must pass assert_can_boot_here on some target (its
        first error otherwise), then a memory bin-pack, largest VM first,
        onto the target with the most free memory
        (HOST_NOT_ENOUGH_FREE_MEMORY [needed; available] when none fits).
        """
        targets = [r for r, h in sorted(db.tables["host"].items())
                   if r != host_ref and h["enabled"] and self.host_live(db, r)]
        vms = [(r, v) for r, v in db.tables["VM"].items()
               if v["resident_on"] == host_ref and not v["is_control_domain"]
               and v["power_state"] != "Halted"]
        plan, blockers = {}, {}
        if not targets:
            return plan, {r: ["NO_HOSTS_AVAILABLE"] for r, _ in vms}
        free = {t: self.free_memory(db, t) for t in targets}
        for vm_ref, vm in sorted(vms, key=lambda rv: -self.vm_memory(rv[1])):
            if vm.get("current_operations"):
                blockers[vm_ref] = ["OTHER_OPERATION_IN_PROGRESS", "VM",
                                    vm_ref]
                continue
            fits, error = [], None
            for target in targets:
                try:
                    self.assert_can_boot_here(db, vm_ref, target)
                    fits.append(target)
                except Failure as failure:
                    error = error or failure
            if not fits:
                blockers[vm_ref] = error.description
                continue
            need = self.vm_memory(vm)
            best = max(fits, key=lambda t: free[t])
            if free[best] < need:
                blockers[vm_ref] = ["HOST_NOT_ENOUGH_FREE_MEMORY", str(need),
                                    str(free[best])]
                continue
            free[best] -= need
            plan[vm_ref] = best
        return plan, blockers

    def move_vm(self, db, vm_ref, target_ref):
        """A running VM now resides on ``target_ref`` (a pool_migrate)."""
        vm = db.get("VM", vm_ref)
        source = vm["resident_on"]
        vm["resident_on"] = target_ref
        db.touch(vm_ref, source, target_ref)

    def reboot(self, host):
        """host.reboot: down for reboot_delay, back disabled and live.

        NOTE(issue 26): the host comes back disabled until host.enable
        (xapi with host.disable auto_enable=false; the default re-enables
        itself at start-up, operations.md §2.1, which a client cannot tell
        from a host that is not up yet). A host with ``reboot_hangs`` never
        comes back.
        """
        if host.db is None:
            return
        db = host.db
        self.set_live(host, False)
        if host.reboot_hangs:
            host.online = False

        def back():
            if host.db is not db or not host.online:
                return
            record = host.host_record()
            record["enabled"] = False
            host.boot_count += 1
            record["other_config"]["agent_start_time"] = "%.3f" % (
                time.time())
            db.touch(host.host_ref())
            self.set_live(host, True)
        self.restart(host, self.reboot_delay, back)
