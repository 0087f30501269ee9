"""A whole xapi pool as plain data, read from its master in one go.

No I/O here: ``operations.read_pool`` fills a ``PoolSnapshot`` from
``event.from`` (or ``get_all_records``), and the planner, preflight and
readiness read it. Tests build snapshots by hand from dicts shaped exactly
like xapi's records (reference/xapi.md §6).
"""

import dataclasses
import urllib.parse

NULL_REF = "OpaqueRef:NULL"

# The classes one read fetches, as event.from spells them.
CLASSES = ("pool", "host", "host_metrics", "sr", "pbd", "vm")

# NOTE(fields): the fields of each class that poolmgr reads (the planner,
# preflight, readiness, the engine's observation and the compute-VM
# checks); a pool's records are kept with these only. A real xapi host
# record has some 90 fields (xapi.md §6), most of them maps and sets; a
# feed follows a pool for as long as the engine does, so what it keeps
# is memory for every pool, host and VM of the fleet. A field read but
# not listed here would read as absent: every test runs with records
# that refuse such a read (tests/conftest.py, ``strict_records``), and a
# check's own tests build their records through ``keep`` too.
FIELDS = {
    "pool": frozenset((
        "uuid", "name_label", "master", "default_SR", "ha_enabled",
        "restrictions", "cpu_info", "tls_verification_enabled",
        "current_operations")),
    "host": frozenset((
        "uuid", "name_label", "address", "hostname", "enabled", "metrics",
        "software_version", "cpu_info", "edition", "API_version_major",
        "API_version_minor", "external_auth_type",
        "external_auth_service_name", "pending_guidances")),
    "host_metrics": frozenset(("live",)),
    "sr": frozenset((
        "uuid", "name_label", "type", "content_type", "shared",
        "is_tools_sr")),
    "pbd": frozenset(("host", "SR", "currently_attached", "device_config")),
    "vm": frozenset((
        "uuid", "name_label", "power_state", "resident_on", "affinity",
        "is_control_domain", "is_a_template", "is_a_snapshot",
        "current_operations")),
}

# Tests put a dict type here that refuses to read a field not in FIELDS.
STRICT = None


def keep(cls, record):
    """``record`` (of class ``cls``) with the fields poolmgr reads only."""
    fields = FIELDS.get(cls)
    if fields is None or not isinstance(record, dict):
        return record
    kept = {k: record[k] for k in fields if k in record}
    return kept if STRICT is None else STRICT(cls, kept)


def as_sent(cls, record):
    """``record`` whole, as xapi sent it (for a measure or a test)."""
    return record


def keep_all(cls, table):
    """{ref: record} with each record kept as ``keep`` does."""
    return {ref: keep(cls, rec) for ref, rec in (table or {}).items()}


def as_bool(value):
    """xapi booleans arrive as bool over XML-RPC; tolerate strings too."""
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


@dataclasses.dataclass
class PoolSnapshot:
    """Every record of one pool that poolmgr needs, keyed by ref."""

    pool_ref: str
    pool: dict
    hosts: dict
    host_metrics: dict = dataclasses.field(default_factory=dict)
    srs: dict = dataclasses.field(default_factory=dict)
    pbds: dict = dataclasses.field(default_factory=dict)
    vms: dict = dataclasses.field(default_factory=dict)
    url: str = None

    @classmethod
    def from_records(cls, pools, hosts, host_metrics=None, srs=None,
                     pbds=None, vms=None, url=None, kept=False):
        """A snapshot of xapi's records; ``kept``: each record already
        holds only its FIELDS (a feed's), so it is not trimmed again."""
        if len(pools) != 1:
            raise ValueError("expected exactly one pool, got %d" % len(pools))
        pool_ref, pool = next(iter(pools.items()))
        if kept:
            pool_rec, table = pool, (lambda _cls, recs: dict(recs or {}))
        else:
            pool_rec, table = keep("pool", pool), keep_all
        return cls(pool_ref=pool_ref, pool=pool_rec,
                   hosts=table("host", hosts),
                   host_metrics=table("host_metrics", host_metrics),
                   srs=table("sr", srs), pbds=table("pbd", pbds),
                   vms=table("vm", vms), url=url)

    # -- pool ---------------------------------------------------------------

    @property
    def name_label(self):
        return self.pool.get("name_label", "")

    @property
    def uuid(self):
        return self.pool.get("uuid")

    @property
    def master_ref(self):
        return self.pool.get("master")

    @property
    def master(self):
        return self.hosts.get(self.master_ref, {})

    @property
    def master_uuid(self):
        return self.master.get("uuid")

    # -- hosts --------------------------------------------------------------

    def host_ref_by_uuid(self, uuid):
        for ref, rec in self.hosts.items():
            if uuid and rec.get("uuid") == uuid:
                return ref
        return None

    def host_ref_by_address(self, address):
        for ref, rec in self.hosts.items():
            if address and address in (rec.get("address"),
                                       rec.get("hostname")):
                return ref
        return None

    def host_live(self, host_ref):
        metrics_ref = self.hosts.get(host_ref, {}).get("metrics")
        metrics = self.host_metrics.get(metrics_ref)
        return bool(metrics) and as_bool(metrics.get("live"))

    def host_enabled(self, host_ref):
        return as_bool(self.hosts.get(host_ref, {}).get("enabled"))

    def resident_vms(self, host_ref):
        """Guest VMs on the host that are not halted (what blocks eject)."""
        return [vm for vm in self._guests()
                if vm.get("resident_on") == host_ref
                and vm.get("power_state") != "Halted"]

    def running_vms(self, host_ref=None):
        """Guest VMs in power state Running (what blocks pool.join)."""
        return [vm for vm in self._guests()
                if vm.get("power_state") == "Running"
                and (host_ref is None or vm.get("resident_on") == host_ref)]

    def vms_with_current_operations(self):
        return [vm for vm in self._guests() if vm.get("current_operations")]

    def _guests(self):
        return [vm for vm in self.vms.values()
                if not as_bool(vm.get("is_control_domain"))
                and not as_bool(vm.get("is_a_template"))
                and not as_bool(vm.get("is_a_snapshot"))]

    # -- storage ------------------------------------------------------------

    def shared_srs(self):
        """{ref: record} of shared SRs that carry VM disks (not ISO/tools)."""
        return {ref: sr for ref, sr in self.srs.items()
                if as_bool(sr.get("shared"))
                and not as_bool(sr.get("is_tools_sr"))
                and sr.get("content_type") != "iso"
                and sr.get("type") != "iso"}

    def pbd_for(self, host_ref, sr_ref):
        for ref, pbd in self.pbds.items():
            if pbd.get("host") == host_ref and pbd.get("SR") == sr_ref:
                return ref, pbd
        return None, None


def url_host(url):
    """The host part of an xapi URL (address or name), without port."""
    return urllib.parse.urlsplit(url).hostname if url else None
