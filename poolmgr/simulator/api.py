"""The xapi messages: session, generic field access, and the dispatch.

``Api.dispatch(host, method, params)`` runs one XML-RPC call received by
``host`` and returns its value or raises ``Failure``; the server wraps the
outcome in xapi's Status/Value envelope. The handlers of the other calls
are mixins, one module per concern: pool membership
(poolmgr.simulator.api_pool), storage and VMs (api_storage_vm), events
(api_events), templates and migration (api_migrate), host maintenance
(api_host_ops); ``Api`` inherits them, so ``self.messages`` names them as
bound methods of the one ``Api``.
"""

import inspect

from poolmgr.simulator.api_events import EventCalls
from poolmgr.simulator.api_migrate import MigrateCalls
from poolmgr.simulator.api_host_ops import HostOpsCalls
from poolmgr.simulator.api_pool import PoolCalls
from poolmgr.simulator.api_storage_vm import StorageVmCalls
from poolmgr.simulator.model import CLASSES
from poolmgr.simulator.model import Failure
from poolmgr.simulator.model import NULL_REF

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


class Api(PoolCalls, StorageVmCalls, EventCalls, MigrateCalls,
          HostOpsCalls):
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
            "host.get_vms_which_prevent_evacuation":
                self.get_vms_which_prevent_evacuation,
            "host.assert_can_evacuate": self.assert_can_evacuate,
            "host.evacuate": self.host_evacuate,
            "host.reboot": self.host_reboot,
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
        self.messages.update(self.migrate_messages())

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
