"""The pool membership calls (§2, §3): join, eject, master hand-over.

``PoolCalls`` is a mixin of poolmgr.simulator.api's ``Api``, which builds
its message table from these methods; ``self.world`` is the Api's World.
"""

from poolmgr.simulator import checks
from poolmgr.simulator import failover
from poolmgr.simulator.model import Failure
from poolmgr.simulator.model import NULL_REF


class PoolCalls:
    """pool.join, pool.eject, pool.designate_new_master, the emergency
    calls, host.destroy, host.enable and host.disable."""

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
        return self.world.host_live(db, ref)

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
        old_master = host.master
        if old_master is not None and old_master.db is host.db and \
                not old_master.serving:
            # NOTE(§1.3): the dead master keeps its own view of the pool.
            failover.fork_stale_view(host.db, old_master)
            self.world.set_live_in(host.db, old_master, False)
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
