"""Plain-data xapi pools for the engine's unit tests (no server, no I/O)."""

import itertools
import uuid as uuidlib

from poolmgr.plan import planner
from poolmgr.xenapi import records

_counter = itertools.count(1)


def _ref(kind):
    return "OpaqueRef:%s-%d" % (kind, next(_counter))


SOFTWARE = {"product_brand": "XenServer", "platform_name": "XCP",
            "platform_version": "3.4.0", "xapi": "24.19", "git_id": "abc123",
            "db_schema": "5.780", "network_backend": "openvswitch",
            "build_number": "1"}


class PoolBuilder:
    """Builds one pool the way its master would report it."""

    def __init__(self, name_label=""):
        self.pool_ref = _ref("pool")
        self.pool = {"uuid": str(uuidlib.uuid4()), "name_label": name_label,
                     "master": records.NULL_REF,
                     "default_SR": records.NULL_REF, "ha_enabled": False,
                     "cpu_info": {"vendor": "GenuineIntel"},
                     "restrictions": {}, "tls_verification_enabled": False,
                     "current_operations": {}}
        self.hosts, self.metrics, self.srs, self.pbds, self.vms = \
            {}, {}, {}, {}, {}

    def add_host(self, name, address=None, live=True, enabled=True,
                 software=None, cpu_vendor="GenuineIntel", **fields):
        ref, metrics_ref = _ref("host"), _ref("host_metrics")
        self.metrics[metrics_ref] = {"uuid": str(uuidlib.uuid4()),
                                     "live": live}
        rec = {"uuid": fields.pop("uuid", str(uuidlib.uuid4())),
               "name_label": name, "hostname": name,
               "address": address or "10.0.0.%d" % (len(self.hosts) + 1),
               "enabled": enabled, "metrics": metrics_ref,
               "software_version": dict(software or SOFTWARE),
               "cpu_info": {"vendor": cpu_vendor},
               "API_version_major": "2", "API_version_minor": "21",
               "edition": "xenserver-premium", "external_auth_type": "",
               "external_auth_service_name": "", "pending_guidances": [],
               "PBDs": [], "resident_VMs": []}
        rec.update(fields)
        self.hosts[ref] = rec
        if self.pool["master"] == records.NULL_REF:
            self.pool["master"] = ref
        return ref

    def add_sr(self, name, shared=True, on=(), attached=True, type_="nfs",
               content_type="user", device_config=None, **fields):
        ref = _ref("SR")
        self.srs[ref] = dict({"uuid": str(uuidlib.uuid4()), "name_label": name,
                              "type": type_, "content_type": content_type,
                              "shared": shared, "is_tools_sr": False,
                              "PBDs": []}, **fields)
        for host_ref in on:
            self.add_pbd(host_ref, ref, attached=attached,
                         device_config=device_config)
        return ref

    def add_pbd(self, host_ref, sr_ref, attached=True, device_config=None):
        ref = _ref("PBD")
        self.pbds[ref] = {"uuid": str(uuidlib.uuid4()), "host": host_ref,
                          "SR": sr_ref, "currently_attached": attached,
                          "device_config": dict(device_config or {
                              "server": "nfs.example", "serverpath": "/vms"})}
        return ref

    def add_vm(self, name, on, power_state="Running", **fields):
        ref = _ref("VM")
        self.vms[ref] = dict({"uuid": str(uuidlib.uuid4()), "name_label": name,
                              "power_state": power_state, "resident_on": on,
                              "is_control_domain": False,
                              "is_a_template": False, "is_a_snapshot": False,
                              "current_operations": {}}, **fields)
        return ref

    def snapshot(self):
        """The records as a feed keeps them (records.FIELDS, strict in
        tests): a check that reads a field not kept fails its own tests."""
        return records.PoolSnapshot.from_records(
            {self.pool_ref: self.pool}, self.hosts, self.metrics, self.srs,
            self.pbds, self.vms)


def standalone(name, **kwargs):
    """A host alone in its own pool, with a local SR, as after install."""
    builder = PoolBuilder()
    ref = builder.add_host(name, **kwargs)
    builder.add_sr("Local storage", shared=False, on=[ref], type_="ext")
    return builder


def observed_pool(builder, names, master=None):
    """planner.Observed for a pool whose hosts are named by name_label."""
    snap = builder.snapshot()
    hosts = {}
    for ref, rec in snap.hosts.items():
        if rec["name_label"] in names:
            hosts[rec["name_label"]] = planner.HostView(
                rec["name_label"], planner.IN_POOL, ref=ref, uuid=rec["uuid"],
                url="http://%s/" % rec["address"])
    master = master or snap.master["name_label"]
    return planner.Observed(pool=snap, master=master, hosts=hosts)


def add_standalone(observed, builder):
    snap = builder.snapshot()
    rec = snap.master
    observed.hosts[rec["name_label"]] = planner.HostView(
        rec["name_label"], planner.STANDALONE, snapshot=snap, uuid=rec["uuid"],
        url="http://%s/" % rec["address"])
    return observed
