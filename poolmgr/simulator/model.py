"""The simulated xapi's data: pool databases and hosts.

Every fact here comes from xen-api's sources as summarised in
``reference/xapi.md``; section numbers in NOTEs point there. A ``PoolDB``
is one pool's database, shared by its master and its slaves (xapi
replicates it; the master's copy is authoritative); a ``SimHost`` is one
box. poolmgr.simulator.world holds them all (``World``), the messages
are poolmgr.simulator.api.
"""

import ipaddress
import time
import uuid as uuidlib

NULL_REF = "OpaqueRef:NULL"

# The software_version xapi reports (§6); pre-join checks compare these.
DEFAULT_SOFTWARE_VERSION = {
    "product_version": "8.4.0",
    "product_version_text": "8.4",
    "product_version_text_short": "8.4",
    "platform_name": "XCP",
    "platform_version": "3.4.0",
    "product_brand": "XenServer",
    "xapi": "24.19",
    "build_number": "sim",
    "git_id": "poolmgr-sim",
    "xen": "4.17.3",
    "linux": "4.19.0+1",
    "network_backend": "openvswitch",
    "db_schema": "5.909",
}


def _copy_record(record):
    # NOTE(speed): records hold strings, bools, maps of strings and lists;
    # one level of copying is a deepcopy here, at a tenth of the cost.
    return {k: (dict(v) if isinstance(v, dict) else
                list(v) if isinstance(v, list) else v)
            for k, v in record.items()}


class Failure(Exception):
    """An xapi error: ``ErrorDescription`` = [code] + params (strings)."""

    def __init__(self, code, *params):
        self.code = code
        self.params = [str(p) for p in params]
        super().__init__(code, *self.params)

    @property
    def description(self):
        return [self.code] + self.params


def new_ref():
    return "OpaqueRef:%s" % uuidlib.uuid4()


def new_uuid():
    return str(uuidlib.uuid4())


def host_address(base, index):
    """Host ``index`` (1-based) listens on 127.0.0.0 + base + index."""
    return str(ipaddress.IPv4Address(
        int(ipaddress.IPv4Address("127.0.0.0")) + base + index))


# Datamodel class names as they appear in method names.
CLASSES = {"pool": "pool", "host": "host", "host_metrics": "host_metrics",
           "SR": "SR", "PBD": "PBD", "VM": "VM", "PIF": "PIF",
           "network": "network", "VDI": "VDI", "VBD": "VBD"}
# Lower-case names used by event.from subscriptions and events.
EVENT_CLASSES = {c.lower(): c for c in CLASSES}

# Ref fields whose other end shows the row in a set field (§6).
RELATED = {"PBD": ("host", "SR"), "VM": ("resident_on",),
           "PIF": ("host", "network"), "VDI": ("SR",),
           "VBD": ("VM", "VDI")}


class PoolDB:
    """One pool's database: tables of records plus event bookkeeping.

    Relationship sets (host.PBDs, SR.PBDs, host.resident_VMs, ...) are
    derived on read, so they can never disagree with the PBD and VM rows.
    """

    CLASSES = ("pool", "host", "host_metrics", "SR", "PBD", "VM", "PIF",
               "network", "VDI", "VBD")

    def __init__(self, world):
        self.world = world
        self.tables = {cls: {} for cls in self.CLASSES}
        # generation bookkeeping for event.from (§7)
        self.generation = 0
        self.created = {}    # ref -> generation
        self.modified = {}   # ref -> generation
        self.deleted = []    # (generation, class, ref, created generation)

    # -- rows -------------------------------------------------------------

    def _bump(self):
        self.generation += 1
        self.world.changed.notify_all()
        return self.generation

    def add(self, cls, record, ref=None):
        ref = ref or new_ref()
        record.setdefault("uuid", new_uuid())
        self.tables[cls][ref] = record
        gen = self._bump()
        self.created[ref] = gen
        self.modified[ref] = gen
        self._touch_related(cls, record)
        return ref

    def touch(self, *refs):
        for ref in refs:
            if ref in self.modified:
                self.modified[ref] = self._bump()

    def _touch_related(self, cls, record):
        # NOTE(§7, inferred from xapi's db_cache one-to-many handling): a
        # row joining or leaving a set field (host.PBDs, SR.PBDs,
        # host.resident_VMs, ...) is a modification of the object on the
        # other end, so event.from reports it.
        self.touch(*[record.get(field) for field in RELATED.get(cls, ())])

    def remove(self, cls, ref):
        record = self.tables[cls].pop(ref, None)
        if record is None:
            return
        gen = self._bump()
        self.deleted.append((gen, cls.lower(), ref,
                             self.created.pop(ref, 0)))
        self.modified.pop(ref, None)
        self._touch_related(cls, record)

    def get(self, cls, ref):
        try:
            return self.tables[cls][ref]
        except KeyError:
            raise Failure("HANDLE_INVALID", cls, ref)

    def find(self, cls, **match):
        return [(ref, rec) for ref, rec in self.tables[cls].items()
                if all(rec.get(k) == v for k, v in match.items())]

    def pool_ref(self):
        return next(iter(self.tables["pool"]))

    def pool(self):
        return self.tables["pool"][self.pool_ref()]

    def vm_srs(self, vm_ref):
        """The SRs holding the VM's disks (VBD -> VDI -> SR)."""
        srs = []
        for vbd in self.tables["VBD"].values():
            vdi = self.tables["VDI"].get(vbd["VDI"])
            if vbd["VM"] == vm_ref and vdi and vdi["SR"] not in srs:
                srs.append(vdi["SR"])
        return srs

    def host_ref_of(self, sim_host):
        for ref, rec in self.tables["host"].items():
            if rec["uuid"] == sim_host.uuid:
                return ref
        return None

    # -- records as xapi returns them ---------------------------------------

    def record(self, cls, ref):
        rec = _copy_record(self.get(cls, ref))
        if cls == "host":
            rec["PBDs"] = [r for r, p in self.tables["PBD"].items()
                           if p["host"] == ref]
            rec["resident_VMs"] = [r for r, v in self.tables["VM"].items()
                                   if v["resident_on"] == ref]
            rec["PIFs"] = [r for r, p in self.tables["PIF"].items()
                           if p["host"] == ref]
            rec["control_domain"] = next(
                (r for r, v in self.tables["VM"].items()
                 if v["is_control_domain"] and v["resident_on"] == ref),
                NULL_REF)
        elif cls == "SR":
            rec["PBDs"] = [r for r, p in self.tables["PBD"].items()
                           if p["SR"] == ref]
            rec["VDIs"] = [r for r, v in self.tables["VDI"].items()
                           if v["SR"] == ref]
        elif cls == "VM":
            rec["VBDs"] = [r for r, b in self.tables["VBD"].items()
                           if b["VM"] == ref]
        elif cls == "VDI":
            rec["VBDs"] = [r for r, b in self.tables["VBD"].items()
                           if b["VDI"] == ref]
        elif cls == "network":
            rec["PIFs"] = [r for r, p in self.tables["PIF"].items()
                           if p["network"] == ref]
        return rec


class SimHost:
    """One simulated XenServer host: its server, its role, its settings."""

    def __init__(self, world, index):
        self.world = world
        self.index = index
        self.name = "%s%02d" % (world.name_prefix, index)
        self.uuid = new_uuid()
        self.address = host_address(world.address_base, index)
        self.url = None
        self.server = None
        self.boot_id = 0
        self.role = "master"
        self.master = None          # SimHost when a slave
        self.db = None              # the pool database it belongs to
        self.online = True          # False: offline (set_offline)
        self.restarting = False     # True inside a join/eject fuse window
        self.emergency = False
        # False: its xapi does not answer (sim.kill_xapi); its domains run
        self.xapi_alive = True
        # machine properties that survive eject (they live on the box)
        self.software_version = dict(DEFAULT_SOFTWARE_VERSION,
                                     hostname=self.name)
        self.cpu_vendor = "GenuineIntel"
        self.edition = "xenserver-premium"
        self.api_version = ("2", "21")
        self.bonds = 0
        self.tunnels = 0
        self.vlans = []
        self.management_vlan = "-1"
        self.latency = 0.0
        self.faults = []            # [method, remaining, code, params, drop]
        self.pbd_plug_failures = {}  # SR name_label or uuid or "*" -> code
        # The uuid of the nova-compute VM on its local SR (--compute-vms);
        # None once an eject has wiped it, or without one.
        self.compute_vm_uuid = None
        # host.reboot: never comes back (sim.set_reboot_hangs); reboots done
        self.reboot_hangs = False
        self.boot_count = 0

    @property
    def serving(self):
        return self.online and self.xapi_alive and not self.restarting

    def describe(self):
        described = {"name_label": self.name, "hostname": self.name,
                     "uuid": self.uuid, "address": self.address,
                     "url": self.url}
        if self.world.compute_vms:
            described["compute_vm_uuid"] = self.compute_vm_uuid
        return described

    def install_compute_vm(self):
        """The classic topology: nova-compute in a PV VM on this host, its
        disk on the local SR, running (nova.md §5, "dom0 plugin")."""
        db = self.db
        host_ref = self.host_ref()
        local_sr = db.pool()["default_SR"]
        vdi_ref = db.add("VDI", {
            "name_label": "nova-compute-%s root" % self.name,
            "name_description": "", "SR": local_sr, "type": "system",
            "virtual_size": str(20 << 30), "physical_utilisation":
            str(4 << 30), "sharable": False, "read_only": False,
            "other_config": {}, "sm_config": {}, "tags": []})
        vm_ref = db.add("VM", {
            "name_label": "nova-compute-%s" % self.name,
            "name_description": "OpenStack nova-compute (classic topology)",
            "is_a_template": False, "is_control_domain": False,
            "power_state": "Running", "resident_on": host_ref,
            "affinity": host_ref, "domid": "1",
            "memory_static_max": str(4 << 30), "VCPUs_max": "2",
            "PV_bootloader": "pygrub",
            "other_config": {"nova_compute": "true"},
            "current_operations": {}, "allowed_operations": []})
        db.add("VBD", {"VM": vm_ref, "VDI": vdi_ref, "device": "xvda",
                       "userdevice": "0", "bootable": True, "mode": "RW",
                       "type": "Disk", "currently_attached": True,
                       "other_config": {}})
        self.compute_vm_uuid = db.tables["VM"][vm_ref]["uuid"]
        return vm_ref

    # -- a fresh standalone installation (first boot, or after eject) ------

    def first_boot(self):
        db = PoolDB(self.world)
        host_ref = new_ref()
        metrics_ref = db.add("host_metrics", {
            "memory_total": str(64 << 30), "memory_free": str(60 << 30),
            "live": True, "last_updated": time.strftime("%Y%m%dT%H:%M:%SZ"),
            "other_config": {}})
        db.add("host", self._host_record(metrics_ref), ref=host_ref)
        network_ref = db.add("network", {
            "name_label": "Pool-wide network associated with eth0",
            "name_description": "", "bridge": "xenbr0", "MTU": "1500",
            "other_config": {}, "purpose": []})
        db.add("PIF", {
            "device": "eth0", "host": host_ref, "network": network_ref,
            "management": True, "IP": self.address,
            "VLAN": self.management_vlan,
            "primary_address_type": "IPv4", "physical": True,
            "currently_attached": True, "other_config": {}})
        db.add("VM", self._dom0_record(host_ref))
        sr_ref = db.add("SR", {
            "name_label": "Local storage", "name_description": "",
            "type": "ext", "content_type": "user", "shared": False,
            "physical_size": str(500 << 30), "physical_utilisation": "0",
            "virtual_allocation": "0", "other_config": {}, "sm_config": {},
            "tags": [], "VDIs": [], "is_tools_sr": False,
            "allowed_operations": [], "current_operations": {}})
        db.add("PBD", {"host": host_ref, "SR": sr_ref,
                       "device_config": {"device": "/dev/sda3"},
                       "currently_attached": True, "other_config": {}})
        db.add("pool", {
            "name_label": "", "name_description": "", "master": host_ref,
            "default_SR": sr_ref, "suspend_image_SR": sr_ref,
            "crash_dump_SR": sr_ref, "ha_enabled": False,
            "ha_configuration": {}, "other_config": {}, "tags": [],
            "cpu_info": {"vendor": self.cpu_vendor},
            "tls_verification_enabled": False, "restrictions": {},
            "allowed_operations": [], "current_operations": {}})
        self.db = db
        self.role = "master"
        self.master = None
        self.emergency = False

    def _host_record(self, metrics_ref):
        return {
            "uuid": self.uuid, "name_label": self.name,
            "name_description": "Default install", "hostname": self.name,
            "address": self.address, "enabled": True,
            "software_version": dict(self.software_version),
            "cpu_info": {"vendor": self.cpu_vendor, "cpu_count": "16",
                         "socket_count": "1", "modelname": "Simulated CPU"},
            "API_version_major": self.api_version[0],
            "API_version_minor": self.api_version[1],
            "API_version_vendor": "XenSource",
            "edition": self.edition, "metrics": metrics_ref,
            # NOTE(xapi.ml): xapi records its start in agent_start_time
            # (epoch seconds); clients compare it to tell a reboot is over.
            "other_config": {"agent_start_time": "%.3f" % time.time()},
            "tags": [], "capabilities": [],
            "external_auth_type": "", "external_auth_service_name": "",
            "allowed_operations": [], "current_operations": {},
            "memory_overhead": "0", "sched_policy": "credit",
            "license_params": {}, "pending_guidances": [],
            "tls_verification_enabled": False,
        }

    def _dom0_record(self, host_ref):
        return {"name_label": "Control domain on host: %s" % self.name,
                "name_description": "", "is_a_template": False,
                "is_control_domain": True, "power_state": "Running",
                "resident_on": host_ref, "affinity": host_ref,
                "domid": "0", "memory_static_max": str(4 << 30),
                "VCPUs_max": "4", "other_config": {},
                "current_operations": {}, "allowed_operations": []}

    def host_ref(self):
        return self.db.host_ref_of(self)

    def host_record(self):
        return self.db.get("host", self.host_ref())
