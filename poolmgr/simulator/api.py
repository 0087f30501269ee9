"""The xapi messages: session, generic field access, and the pool calls.

``Api.dispatch(host, method, params)`` runs one XML-RPC call received by
``host`` and returns its value or raises ``Failure``; the server wraps the
outcome in xapi's Status/Value envelope.
"""

import inspect
import time

from poolmgr.simulator import checks
from poolmgr.simulator import model
from poolmgr.simulator.model import Failure
from poolmgr.simulator.model import NULL_REF

# Datamodel class names as they appear in method names.
CLASSES = {"pool": "pool", "host": "host", "host_metrics": "host_metrics",
           "SR": "SR", "PBD": "PBD", "VM": "VM", "PIF": "PIF",
           "network": "network", "VDI": "VDI", "VBD": "VBD"}
# Lower-case names used by event.from subscriptions and events.
EVENT_CLASSES = {c.lower(): c for c in CLASSES}

# Classes with a name_label, hence get_by_name_label (PBD, PIF and
# host_metrics have none in xapi's datamodel).
NAMED_CLASSES = {"pool", "host", "SR", "VM", "network", "VDI"}
# Set fields computed from the rows that point back (model.PoolDB.record).
DERIVED = {"host": ("PBDs", "resident_VMs", "PIFs", "control_domain"),
           "SR": ("PBDs", "VDIs"), "network": ("PIFs",), "VM": ("VBDs",),
           "VDI": ("VBDs",)}
LOGIN_CALLS = ("session.login_with_password",)

SETTABLE = {"name_label", "name_description", "other_config", "tags"}
SETTABLE_BY_CLASS = {"pool": {"default_SR", "suspend_image_SR",
                              "crash_dump_SR"},
                     "VM": {"affinity"}}

# NOTE(§3.2): the calls a slave in emergency mode still serves.
EMERGENCY_CALLS = {"pool.emergency_transition_to_master",
                   "pool.emergency_reset_master", "pool.ping_slave",
                   "host.is_in_emergency_mode"}


class Api:
    def __init__(self, world):
        self.world = world
        self._params_of = {}    # (method, handler) -> params on the wire
        self.messages = {
            "pool.join": self.pool_join,
            "pool.join_force": self.pool_join_force,
            "pool.eject": self.pool_eject,
            "pool.designate_new_master": self.designate_new_master,
            "pool.emergency_transition_to_master":
                self.emergency_transition_to_master,
            "pool.emergency_reset_master": self.emergency_reset_master,
            "pool.recover_slaves": self.recover_slaves,
            "host.destroy": self.host_destroy,
            "host.enable": lambda h, s, ref: self._set_enabled(h, ref, True),
            "host.disable": lambda h, s, ref: self._set_enabled(h, ref,
                                                                False),
            "host.is_in_emergency_mode": lambda h, s: h.emergency,
            "SR.create": self.sr_create,
            "SR.introduce": self.sr_introduce,
            "SR.forget": self.sr_forget,
            "PBD.create": self.pbd_create,
            "PBD.plug": self.pbd_plug,
            "PBD.unplug": self.pbd_unplug,
            "PBD.destroy": self.pbd_destroy,
            "VM.create": self.vm_create,
            "VM.start": self.vm_start,
            "VM.start_on": self.vm_start_on,
            "VM.clean_shutdown": self.vm_clean_shutdown,
            "VM.hard_shutdown": self.vm_hard_shutdown,
            "VM.destroy": self.vm_destroy,
            "event.from": self.event_from,
            "event.inject": self.event_inject,
            "event.get_current_id": self.event_get_current_id,
            "session.get_this_host": self.session_get_this_host,
        }

    # -- entry ----------------------------------------------------------------

    def dispatch(self, host, method, params):
        world = self.world
        if method in LOGIN_CALLS:
            if not 2 <= len(params) <= 4:
                raise Failure("MESSAGE_PARAMETER_COUNT_MISMATCH", method, 4,
                              len(params))
            return world.login(host, params[0], params[1])
        if method == "session.slave_local_login_with_password":
            self._arity(method, params, 2)
            # NOTE(§4): works on any host; the session is only valid there.
            return world.login(host, params[0], params[1], local_only=True)
        handler, expected = self._resolve(host, method)
        # NOTE(§1): xapi rejects unknown messages and wrong parameter counts
        # before it looks at the session.
        if expected is not None:
            self._arity(method, params, expected)
        if method in ("session.logout", "session.local_logout"):
            world.sessions.pop(params[0], None)
            return ""
        session = params[0]
        entry = world.sessions.get(session)
        if entry is not None and entry[2] and entry[0] is host:
            if entry[1] != host.boot_id:
                raise Failure("SESSION_INVALID", session)
            if host.role == "slave" and method not in EMERGENCY_CALLS:
                raise Failure("HOST_IS_SLAVE", host.master.address)
        else:
            world.session_host(host, session)
        if host.db is None:
            raise Failure("HOST_UNKNOWN_TO_MASTER", host.uuid)
        if handler is not None:
            return handler(host, session, *params[1:])
        return self.generic(host, method, params)

    def _resolve(self, host, method):
        """(handler or None, expected param count incl. session)."""
        if method in ("session.logout", "session.local_logout"):
            return None, 1
        handler = self.messages.get(method)
        if handler is not None:
            arity = self._params_of.get((method, handler))
            if arity is None:
                # NOTE(speed): inspect.signature at every call was 5 % of
                # the simulator's CPU; the handlers never change.
                args = inspect.signature(handler).parameters
                arity = self._params_of[(method, handler)] = len(
                    [a for a in args.values()
                     if a.kind is a.POSITIONAL_OR_KEYWORD]) - 1
            # handler(host, session, *args): the wire has session + args
            return handler, arity
        cls, _, message = method.partition(".")
        if cls not in CLASSES or host.db is None:
            raise Failure("MESSAGE_METHOD_UNKNOWN", method)
        if message in ("get_all", "get_all_records"):
            return None, 1
        if message in ("get_record", "get_by_uuid"):
            return None, 2
        if message == "get_by_name_label" and cls in NAMED_CLASSES:
            return None, 2
        if message.startswith("get_") and message[4:] in self._fields(
                host.db, cls):
            return None, 2
        if message.startswith("set_") and message[4:] in (
                SETTABLE | SETTABLE_BY_CLASS.get(cls, set())) and \
                message[4:] in self._fields(host.db, cls):
            return None, 3
        if message == "add_to_other_config":
            return None, 4
        if message == "remove_from_other_config":
            return None, 3
        raise Failure("MESSAGE_METHOD_UNKNOWN", method)

    @staticmethod
    def _fields(db, cls):
        fields = set(DERIVED.get(cls, ()))
        for record in db.tables[cls].values():
            fields.update(record)
            break
        return fields

    @staticmethod
    def _arity(method, params, expected):
        if len(params) != expected:
            raise Failure("MESSAGE_PARAMETER_COUNT_MISMATCH", method,
                          expected, len(params))

    # -- generic field access -------------------------------------------------

    def generic(self, host, method, params):
        cls, _, message = method.partition(".")
        db = host.db
        table = db.tables[cls]
        args = params[1:]
        if message == "get_all":
            return list(table)
        if message == "get_all_records":
            return {ref: db.record(cls, ref) for ref in table}
        if message == "get_record":
            return db.record(cls, args[0])
        if message == "get_by_uuid":
            for ref, rec in table.items():
                if rec["uuid"] == args[0]:
                    return ref
            raise Failure("UUID_INVALID", cls, args[0])
        if message == "get_by_name_label":
            return [ref for ref, rec in table.items()
                    if rec.get("name_label") == args[0]]
        if message.startswith("get_"):
            return db.record(cls, args[0])[message[4:]]
        if message.startswith("set_"):
            field = message[4:]
            record = db.get(cls, args[0])
            if field.endswith("SR") and args[1] != NULL_REF:
                db.get("SR", args[1])
            record[field] = args[1]
            db.touch(args[0])
            return ""
        record = db.get(cls, args[0])
        if message == "add_to_other_config":
            if args[1] in record["other_config"]:
                raise Failure("MAP_DUPLICATE_KEY", cls, "other_config",
                              args[0], args[1])
            record["other_config"][args[1]] = args[2]
        else:
            record["other_config"].pop(args[1], None)
        db.touch(args[0])
        return ""

    def session_get_this_host(self, host, session, session_ref):
        if session_ref != session and session_ref not in self.world.sessions:
            raise Failure("HANDLE_INVALID", "session", session_ref)
        return host.host_ref()

    # -- pool membership (§2, §3) ---------------------------------------------

    def pool_join(self, host, session, master_address, username, password):
        return self._join(host, master_address, username, password, False)

    def pool_join_force(self, host, session, master_address, username,
                        password):
        return self._join(host, master_address, username, password, True)

    def _join(self, host, master_address, username, password, force):
        world = self.world
        master = world.by_address(master_address)
        # NOTE(§2.1 step 2): the joiner logs in to the master first; an
        # address nobody answers on is a connection failure, a slave answers
        # HOST_IS_SLAVE and bad credentials fail the login.
        if master is None or not master.serving:
            raise Failure("JOINING_HOST_CONNECTION_FAILED")
        if master.role == "slave":
            raise Failure("HOST_IS_SLAVE", master.master.address)
        world.check_credentials(username, password)
        checks.pre_join_checks(world, host, master, force)
        self._move_into_pool(host, master)
        return ""

    def _move_into_pool(self, joiner, master):
        world = self.world
        old, db = joiner.db, master.db
        old_ref = joiner.host_ref()
        host_rec = dict(old.get("host", old_ref))
        metrics_ref = db.add("host_metrics", dict(
            old.get("host_metrics", host_rec["metrics"]), live=False))
        host_rec["metrics"] = metrics_ref
        host_rec["enabled"] = True
        # NOTE(§2.1 step 8): the joiner's records move with the same uuid.
        new_ref = db.add("host", host_rec)
        management_net = next(
            (ref for ref, n in db.tables["network"].items()
             if n.get("bridge") == "xenbr0"), None)
        for pif in old.tables["PIF"].values():
            db.add("PIF", dict(pif, host=new_ref, network=management_net
                               or pif["network"]))
        vms = {}
        for vm_ref, vm in old.tables["VM"].items():
            if vm["is_control_domain"]:
                db.add("VM", dict(vm, resident_on=new_ref, affinity=new_ref))
            elif vm["power_state"] == "Halted":
                # NOTE(§2.1 step 8): the VM metadata export/import keeps the
                # uuid; its affinity now names the joiner's new host row.
                vms[vm_ref] = db.add("VM", dict(
                    vm, resident_on=NULL_REF, current_operations={},
                    affinity=new_ref if vm.get("affinity") == old_ref
                    else NULL_REF))
        vdis = {}
        for sr_ref, sr in old.tables["SR"].items():
            new_sr = db.add("SR", dict(sr, shared=False))
            for pbd in old.tables["PBD"].values():
                if pbd["SR"] == sr_ref:
                    # NOTE(§2.1 step 9): local PBDs are unplugged before
                    # the restart and plugged again when it comes back.
                    db.add("PBD", dict(pbd, host=new_ref, SR=new_sr,
                                       currently_attached=False))
            for vdi_ref, vdi in old.tables["VDI"].items():
                if vdi["SR"] == sr_ref:
                    vdis[vdi_ref] = db.add("VDI", dict(vdi, SR=new_sr))
        for vbd in old.tables["VBD"].values():
            if vbd["VM"] in vms and vbd["VDI"] in vdis:
                db.add("VBD", dict(vbd, VM=vms[vbd["VM"]],
                                   VDI=vdis[vbd["VDI"]],
                                   currently_attached=False))
        joiner.db = db
        joiner.role = "slave"
        joiner.master = master

        def started_as_slave():
            if joiner.db is db and joiner.role == "slave":
                world.welcome_slave(joiner.master, joiner)
        world.restart(joiner, world.join_delay, started_as_slave)

    def _member(self, host, ref):
        for member in self.world.members(host.db):
            if member.host_ref() == ref:
                return member
        host.db.get("host", ref)  # HANDLE_INVALID for unknown refs
        return None

    def _live(self, db, ref):
        metrics = db.tables["host_metrics"].get(db.get("host", ref)["metrics"])
        return bool(metrics and metrics["live"])

    def pool_eject(self, host, session, host_ref):
        world, db = self.world, host.db
        target = self._member(host, host_ref)
        # NOTE(§3.1): eject runs its checks in this order.
        if not self._live(db, host_ref) or target is None or not target.online:
            raise Failure("HOST_OFFLINE", host_ref)
        if db.pool()["ha_enabled"]:
            raise Failure("HA_IS_ENABLED")
        if "apply_updates" in db.pool()["current_operations"].values():
            raise Failure("NOT_SUPPORTED_DURING_UPGRADE")
        if target is host or db.pool()["master"] == host_ref:
            raise Failure("INTERNAL_ERROR", "Xapi_pool.Cannot_eject_master")
        for vm in db.tables["VM"].values():
            if (vm["resident_on"] == host_ref and not vm["is_control_domain"]
                    and vm["power_state"] != "Halted"):
                raise Failure("OPERATION_NOT_ALLOWED", "VM resident on host")
        self._forget_host(db, host_ref)
        target.db = None
        world.restart(target, world.eject_delay, target.first_boot)
        return ""

    def _forget_host(self, db, host_ref):
        pbds = [(ref, p) for ref, p in db.tables["PBD"].items()
                if p["host"] == host_ref]
        for ref, pbd in pbds:
            pbd["currently_attached"] = False
        for ref, pbd in pbds:
            sr_pbds = [p for p in db.tables["PBD"].values()
                       if p["SR"] == pbd["SR"]]
            db.remove("PBD", ref)
            if len(sr_pbds) == 1:
                # its local SRs are forgotten (§3.1 step 4)
                self._forget_local_sr(db, pbd["SR"])
        for cls in ("PIF",):
            for ref in [r for r, p in db.tables[cls].items()
                        if p["host"] == host_ref]:
                db.remove(cls, ref)
        for ref in [r for r, v in db.tables["VM"].items()
                    if v["resident_on"] == host_ref
                    and v["is_control_domain"]]:
            db.remove("VM", ref)
        metrics = db.get("host", host_ref)["metrics"]
        db.remove("host", host_ref)
        db.remove("host_metrics", metrics)

    def _forget_local_sr(self, db, sr_ref):
        """SR.forget of an ejected host's local SR: its disks are wiped by
        firstboot, so the VMs living on them (a compute VM) go with it."""
        vdis = [r for r, v in db.tables["VDI"].items() if v["SR"] == sr_ref]
        vms = {b["VM"] for b in db.tables["VBD"].values()
               if b["VDI"] in vdis}
        for vm_ref in vms:
            vm = db.tables["VM"].get(vm_ref)
            if vm is None or vm["is_control_domain"]:
                continue
            for vbd_ref in [r for r, b in db.tables["VBD"].items()
                            if b["VM"] == vm_ref]:
                db.remove("VBD", vbd_ref)
            for member in self.world.hosts:
                if member.compute_vm_uuid == vm["uuid"]:
                    member.compute_vm_uuid = None
            db.remove("VM", vm_ref)
        for vdi_ref in vdis:
            for vbd_ref in [r for r, b in db.tables["VBD"].items()
                            if b["VDI"] == vdi_ref]:
                db.remove("VBD", vbd_ref)
            db.remove("VDI", vdi_ref)
        db.remove("SR", sr_ref)

    def designate_new_master(self, host, session, host_ref):
        world, db = self.world, host.db
        target = self._member(host, host_ref)
        if target is None or not target.serving:
            raise Failure("HOST_OFFLINE", host_ref)
        if target is host:
            return ""
        if db.pool()["ha_enabled"]:
            raise Failure("HA_IS_ENABLED")
        old_master = host
        for member in world.members(db):
            member.role = "slave"
            member.master = target
        target.role, target.master = "master", None
        db.pool()["master"] = host_ref
        db.touch(db.pool_ref())
        # NOTE(§3.2): both ends commit the new role and restart their xapi.
        delay = min(world.join_delay, 2.0)
        world.restart(target, delay, lambda: None)
        world.restart(old_master, delay, lambda: None)
        return ""

    def emergency_transition_to_master(self, host, session):
        if host.db.pool()["ha_enabled"]:
            raise Failure("HA_IS_ENABLED")
        if host.role == "master":
            return ""
        host.role, host.master, host.emergency = "master", None, False
        host.db.pool()["master"] = host.host_ref()
        host.db.touch(host.db.pool_ref())
        return ""

    def emergency_reset_master(self, host, session, master_address):
        new_master = self.world.by_address(master_address)
        if new_master is None:
            raise Failure("HOST_CANNOT_RESOLVE", master_address)
        host.role, host.master = "slave", new_master
        return ""

    def recover_slaves(self, host, session):
        recovered = []
        for member in self.world.members(host.db):
            if member is host or not member.serving:
                continue
            if member.master is not host:
                # NOTE(§3.2): emergency_reset_master restarts its xapi.
                member.role, member.master = "slave", host
                member.boot_id += 1
                recovered.append(member.host_ref())
        return recovered

    def host_destroy(self, host, session, host_ref):
        db = host.db
        target = self._member(host, host_ref)
        if db.pool()["master"] == host_ref or self._live(db, host_ref):
            raise Failure("HOST_IS_LIVE", host_ref)
        if db.pool()["ha_enabled"]:
            raise Failure("HA_IS_ENABLED")
        if any(v["resident_on"] == host_ref and not v["is_control_domain"]
               for v in db.tables["VM"].values()):
            raise Failure("HOST_HAS_RESIDENT_VMS", host_ref)
        self._forget_host(db, host_ref)
        if target is not None:
            target.db = None
        return ""

    def _set_enabled(self, host, ref, enabled):
        host.db.get("host", ref)["enabled"] = enabled
        host.db.touch(ref)
        return ""

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
        # NOTE(reference/xapi.md §6 "Migration"): assert_can_boot_here
        # checks the host is live, then enabled, then that every SR with a
        # disk of the VM has an attached PBD on that host.
        if not self._live(db, host_ref):
            raise Failure("HOST_NOT_LIVE")
        if not db.get("host", host_ref)["enabled"]:
            raise Failure("HOST_DISABLED", host_ref)
        for sr_ref in db.vm_srs(vm_ref):
            if not any(p["SR"] == sr_ref and p["host"] == host_ref
                       and p["currently_attached"]
                       for p in db.tables["PBD"].values()):
                raise Failure("VM_REQUIRES_SR", vm_ref, sr_ref)

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
        db.remove("VM", vm_ref)
        return ""

    # -- events (§7) ----------------------------------------------------------

    def event_from(self, host, session, classes, token, timeout):
        world, db = self.world, host.db
        if token == "":
            since = -1
        else:
            try:
                since = int(str(token).split(",")[0])
            except ValueError:
                raise Failure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)
        wanted = set()
        refs = set()
        for sub in classes:
            name, _, ref = str(sub).partition("/")
            name = name.lower()
            if name == "*":
                wanted.update(EVENT_CLASSES)
            elif name in EVENT_CLASSES:
                if ref:
                    refs.add(ref)
                else:
                    wanted.add(name)
            elif name != "message":
                raise Failure("EVENT_SUBSCRIPTION_PARSE_FAILURE", sub)
        deadline = time.monotonic() + max(float(timeout), 0.0)
        while True:
            batch = self._events(db, since, wanted, refs)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or host.db is not db:
                break
            world.changed.wait(remaining)
        return {"events": batch,
                "valid_ref_counts": {
                    cls: str(len(db.tables[EVENT_CLASSES[cls]]))
                    for cls in sorted(wanted)},
                "token": "%020d,%020d" % (db.generation, 0)}

    def event_inject(self, host, session, cls, ref):
        db = host.db
        table = EVENT_CLASSES.get(str(cls).lower())
        if table is None or ref not in db.tables[table]:
            raise Failure("HANDLE_INVALID", cls, ref)
        db.touch(ref)
        return "%020d,%020d" % (db.generation, 0)

    def event_get_current_id(self, host, session):
        return host.db.generation

    def _events(self, db, since, wanted, refs):
        batch = []
        for name in sorted(EVENT_CLASSES):
            cls = EVENT_CLASSES[name]
            for ref in db.tables[cls]:
                if name not in wanted and ref not in refs:
                    continue
                if db.modified.get(ref, 0) <= since:
                    continue
                op = "add" if db.created.get(ref, 0) > since else "mod"
                batch.append({"id": str(db.modified[ref]),
                              "timestamp": "0.0", "class": name,
                              "operation": op, "ref": ref,
                              "snapshot": db.record(cls, ref)})
        for gen, name, ref, created in db.deleted:
            if gen > since and created <= since and since >= 0 and (
                    name.lower() in wanted or ref in refs):
                batch.append({"id": str(gen), "timestamp": "0.0",
                              "class": name.lower(), "operation": "del",
                              "ref": ref})
        return batch
