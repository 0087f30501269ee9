"""poolmgr-xapi-sim: XenServer hosts over xapi's real XML-RPC wire protocol.

Embed it::

    from poolmgr.simulator import Simulator
    with Simulator(hosts=4, port=0, password="secret", join_delay=0.5) as sim:
        for host in sim.hosts:
            print(host["name_label"], host["url"])

Each host is a standalone pool master with a local SR until a client joins
it to a pool with ``pool.join`` through the ``XenAPI`` client. The methods
below (and the same ones as a ``sim.*`` XML-RPC namespace without a session)
inject faults and set hosts up for the checks xapi runs.

``Simulator(tls=True)`` (``--tls``) serves HTTPS, each host with its own
self-signed certificate (``host.get_server_certificate``,
``rotate_certificate``); such hosts still answer plain HTTP on the same
port, as xapi answers on 80 beside 443.
"""

import collections
import threading

from poolmgr.simulator.api import Api
from poolmgr.simulator.controls_migrate import MigrateControls
from poolmgr.simulator.failover import FailoverControls
from poolmgr.simulator.controls_vm import VmControls
from poolmgr.simulator.model import Failure
from poolmgr.simulator.acceptor import Acceptor
from poolmgr.simulator.server import Endpoint
from poolmgr.simulator import tls as sim_tls
from poolmgr.simulator.world import World

__all__ = ["Simulator", "CallRecord", "Failure"]

CallRecord = collections.namedtuple("CallRecord",
                                    "timestamp host method params")


class Simulator(MigrateControls, FailoverControls, VmControls):
    def __init__(self, hosts=1, port=8080, address_base=10, username="root",
                 password="", join_delay=10.0, eject_delay=10.0,
                 name_prefix="xs", compute_vms=False, tls=False,
                 reboot_delay=5.0, migrate_delay=0.5):
        if hosts < 1:
            raise ValueError("at least one host")
        self.world = World(username=username, password=password,
                           join_delay=join_delay, eject_delay=eject_delay,
                           address_base=address_base, name_prefix=name_prefix,
                           compute_vms=compute_vms, reboot_delay=reboot_delay,
                           migrate_delay=migrate_delay)
        self.api = Api(self.world)
        self.port = port
        self._requested_port = port
        self._endpoints = {}
        self._acceptor = None
        self._faults_lock = threading.Lock()
        self.world.on_restart = self._on_restart
        for _ in range(hosts):
            self.world.add_host()
        self.tls = bool(tls)
        self._certificates = {}
        if self.tls:
            for host in self.world.hosts:
                self._certificates[host.name] = sim_tls.HostCertificate(
                    host.name, host.address, host.uuid)
            self.api.messages["host.get_server_certificate"] = \
                self._get_server_certificate

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        """Listen on every host's address; returns once all listen.

        ``port=0`` picks one free port that every host address can bind.
        """
        self._acceptor = Acceptor()
        self._endpoints = {h.name: Endpoint(self, h, self._acceptor)
                           for h in self.world.hosts}
        for name, certificate in self._certificates.items():
            self._endpoints[name].certificate = certificate
        last_error = None
        for _ in range(20):
            try:
                self._listen_all(self.port)
                for host in self.world.hosts:
                    host.url = "%s://%s:%d/" % (
                        "https" if self.tls else "http", host.address,
                        self.port)
                return self
            except OSError as exc:
                last_error = exc
                for endpoint in self._endpoints.values():
                    endpoint.close()
                if self._requested_port:
                    break
                self.port = 0
        self._acceptor.stop()
        raise last_error

    def _listen_all(self, port):
        first = self.world.hosts[0]
        # NOTE(port): with port 0 the kernel picks a port free on the first
        # address; the others then try that port (a clash means retry).
        self.port = self._endpoints[first.name].listen(port)
        for host in self.world.hosts[1:]:
            self._endpoints[host.name].listen(self.port)

    def stop(self):
        with self.world.lock:
            if self.world.stopped:
                return
            self.world.stopped = True
            self.world.changed.notify_all()
            for timer in self.world.timers:
                timer.cancel()
        for endpoint in self._endpoints.values():
            endpoint.close()
        if self._acceptor is not None:
            self._acceptor.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _on_restart(self, host, down):
        endpoint = self._endpoints.get(host.name)
        if endpoint is not None:
            endpoint.sync()

    # -- what clients see ----------------------------------------------------

    @property
    def hosts(self):
        described = [h.describe() for h in self.world.hosts]
        for host in described:
            certificate = self._certificates.get(host["name_label"])
            if certificate is not None:
                host["sha256_fingerprint"] = certificate.sha256_fingerprint
        return described

    def host(self, key):
        return self.world.host(key)

    @staticmethod
    def make_record(timestamp, host, method, params):
        return CallRecord(timestamp, host, method, params)

    @property
    def call_log(self):
        with self.world.lock:
            return list(self.world.call_log)

    def calls(self, method=None, host=None):
        if isinstance(host, dict):
            host = host["name_label"]
        return [c for c in self.call_log
                if (method is None or c.method == method)
                and (host is None or c.host == host)]

    def reset_call_log(self):
        with self.world.lock:
            self.world.call_log.clear()

    def role(self, key):
        """'master' or 'slave' (None while the host restarts or is gone)."""
        host = self.world.host(key)
        with self.world.lock:
            if host.restarting or host.db is None:
                return None
            return host.role

    def master_of(self, key):
        host = self.world.host(key)
        with self.world.lock:
            return host.master.name if host.master else host.name

    def pool_uuid(self, key):
        host = self.world.host(key)
        with self.world.lock:
            return host.db.pool()["uuid"] if host.db else None

    # -- fault injection and set-up ----------------------------------------

    def take_fault(self, host, method):
        with self._faults_lock:
            for fault in host.faults:
                if fault[0] in (method, "*") and fault[1] > 0:
                    fault[1] -= 1
                    if fault[1] == 0:
                        host.faults.remove(fault)
                    return fault[2], fault[3], fault[4]
        return None

    def fail_next(self, host, method, count=1, code="INTERNAL_ERROR",
                  params=(), drop_connection=False):
        """The next ``count`` calls of ``method`` on ``host`` fail."""
        with self._faults_lock:
            self.world.host(host).faults.append(
                [method, int(count), code, list(params),
                 bool(drop_connection)])

    def set_latency(self, host, seconds):
        self.world.host(host).latency = float(seconds)

    def set_offline(self, host, offline=True):
        """Unreachable (connection refused); its master sees it not live."""
        h = self.world.host(host)
        with self.world.lock:
            h.online = not offline
            self.world.set_live(h, not offline)
        self._endpoints[h.name].sync()

    def _edit_host(self, host, **fields):
        h = self.world.host(host)
        with self.world.lock:
            for key, value in fields.items():
                setattr(h, key, value)
            if h.db is not None and h.host_ref() is not None:
                rec = h.host_record()
                rec["software_version"] = dict(h.software_version)
                rec["cpu_info"]["vendor"] = h.cpu_vendor
                rec["edition"] = h.edition
                rec["API_version_major"], rec["API_version_minor"] = \
                    h.api_version
                h.db.touch(h.host_ref())
                if h.role == "master":
                    h.db.pool()["cpu_info"]["vendor"] = h.cpu_vendor
        return h

    def set_software_version(self, host, **keys):
        h = self.world.host(host)
        version = dict(h.software_version)
        version.update({k: str(v) for k, v in keys.items()})
        self._edit_host(host, software_version=version)

    def set_cpu_vendor(self, host, vendor):
        self._edit_host(host, cpu_vendor=vendor)

    def set_edition(self, host, edition):
        self._edit_host(host, edition=edition)

    def set_api_version(self, host, major, minor):
        self._edit_host(host, api_version=(str(major), str(minor)))

    def set_ha(self, host, enabled=True):
        h = self.world.host(host)
        with self.world.lock:
            h.db.pool()["ha_enabled"] = bool(enabled)
            h.db.touch(h.db.pool_ref())

    def add_bond(self, host):
        self._edit_host(host, bonds=self.world.host(host).bonds + 1)

    def add_tunnel(self, host):
        self._edit_host(host, tunnels=self.world.host(host).tunnels + 1)

    def add_vlan(self, host, tag):
        h = self.world.host(host)
        self._edit_host(host, vlans=h.vlans + [str(tag)])

    def set_management_vlan(self, host, tag):
        self._edit_host(host, management_vlan=str(tag))

    def set_pbd_plug_failure(self, host, sr_uuid_or_name=None,
                             code="SR_BACKEND_FAILURE_73", enabled=True):
        """PBD.plug of an SR (name_label or uuid; None = any) on ``host``
        fails with ``code`` while enabled (also the PBDs a new slave gets)."""
        sr = sr_uuid_or_name
        h = self.world.host(host)
        if code is None or code is False:
            # set_pbd_plug_failure(host, sr, False): a positional "off"
            enabled = False
        with self.world.lock:
            key = sr or "*"
            if enabled:
                h.pbd_plug_failures[key] = code
            else:
                h.pbd_plug_failures.pop(key, None)

    def unplug_pbd(self, host, sr):
        """Unplug ``host``'s PBD of SR ``sr`` by hand (xe pbd-unplug)."""
        h = self.world.host(host)
        with self.world.lock:
            db, ref = h.db, h.host_ref()
            for pbd_ref, pbd in db.tables["PBD"].items():
                sr_rec = db.tables["SR"][pbd["SR"]]
                if pbd["host"] == ref and sr in (sr_rec["name_label"],
                                                 sr_rec["uuid"]):
                    pbd["currently_attached"] = False
                    db.touch(pbd_ref)
                    return pbd_ref
        raise KeyError("%s has no PBD for SR %s" % (h.name, sr))

    def set_clean_shutdown_delay(self, vm_uuid, seconds):
        """The guest of VM ``vm_uuid`` takes ``seconds`` to honour
        VM.clean_shutdown (the call blocks that long; a VM.hard_shutdown
        meanwhile cancels it). 0 restores an instant shutdown."""
        with self.world.lock:
            if float(seconds) > 0:
                self.world.clean_shutdown_delays[vm_uuid] = float(seconds)
            else:
                self.world.clean_shutdown_delays.pop(vm_uuid, None)

    def vm_state(self, vm_uuid):
        """{"power_state", "resident_on" (host name or ""), "pool"} of the VM
        with that uuid, looked up in every pool database; {} if none has it.
        """
        with self.world.lock:
            seen = set()
            for host in self.world.hosts:
                db = host.db
                if db is None or id(db) in seen:
                    continue
                seen.add(id(db))
                for vm in db.tables["VM"].values():
                    if vm["uuid"] != vm_uuid:
                        continue
                    owner = next((h.name for h in self.world.members(db)
                                  if h.host_ref() == vm["resident_on"]), "")
                    return {"power_state": vm["power_state"],
                            "resident_on": owner,
                            "pool": db.pool()["uuid"]}
            return {}

    def create_shared_sr(self, host, name_label="NFS", type="nfs",
                         device_config=None):
        """SR.create with shared=true on ``host``'s pool; returns its uuid."""
        h = self.world.host(host)
        with self.world.lock:
            master = h if h.role == "master" else h.master
            config = device_config or {"server": "nfs.example",
                                       "serverpath": "/export/%s"
                                       % name_label}
            ref = self.api.sr_create(master, None, h.host_ref(), config, "0",
                                     name_label, "", type, "user", True, {})
            return master.db.tables["SR"][ref]["uuid"]

    # -- TLS (Simulator(tls=True)) -------------------------------------------

    def certificate(self, host):
        """The host's current ``tls.HostCertificate`` (``.pem``, ``.der``,
        ``.sha256_fingerprint``)."""
        return self._certificates[self.world.host(host).name]

    def rotate_certificate(self, host):
        """A new self-signed certificate for ``host``, as
        ``xe host-refresh-server-certificate``; open connections are cut.
        Returns the new SHA-256 fingerprint."""
        h = self.world.host(host)
        if not self.tls:
            raise ValueError("the simulator serves no TLS (tls=False)")
        certificate = sim_tls.HostCertificate(h.name, h.address, h.uuid)
        self._certificates[h.name] = certificate
        endpoint = self._endpoints.get(h.name)
        if endpoint is not None:
            endpoint.certificate = certificate
            endpoint.sever()
        return certificate.sha256_fingerprint

    def _get_server_certificate(self, host, session, host_ref):
        # NOTE(§host): the PEM of the host ``host_ref`` names, which need
        # not be the one answering (a master answers for its slaves).
        uuid = host.db.get("host", host_ref)["uuid"]
        return self._certificates[self.world.host(uuid).name].pem

    # -- the sim.* namespace over XML-RPC ------------------------------------

    CONTROL = ("fail_next", "set_latency", "set_offline",
               "set_software_version", "set_cpu_vendor", "set_edition",
               "set_api_version", "set_ha", "add_bond", "add_tunnel",
               "add_vlan", "set_management_vlan", "set_pbd_plug_failure",
               "unplug_pbd", "create_running_vm", "create_shared_sr",
               "set_clean_shutdown_delay", "vm_state",
               "reset_call_log", "role", "master_of", "pool_uuid",
               "rotate_certificate", "set_memory", "set_reboot_hangs",
               "set_reboot_delay", "set_migrate_delay", "boot_count") + \
        MigrateControls.MIGRATE_CONTROL + FailoverControls.CONTROL

    def control(self, name, params):
        if name == "hosts":
            return self.hosts
        if name == "call_log":
            return [dict(c._asdict()) for c in self.call_log]
        if name not in self.CONTROL:
            raise Failure("MESSAGE_METHOD_UNKNOWN", "sim." + name)
        args = list(params)
        kwargs = {}
        if name == "set_software_version" and len(args) == 2:
            kwargs, args = dict(args[1]), args[:1]
        try:
            result = getattr(self, name)(*args, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise Failure("INTERNAL_ERROR", str(exc))
        return "" if result is None else result
