"""Desired pool + observed pool -> the ordered steps that close the gap.

Pure: no I/O, plain data in and out. The reconciler observes xapi, calls
``plan_pool_changes`` and executes steps up to and including the first one
that mutates xapi, then observes again; so every plan is made from fresh
facts and a step that already took effect is never repeated.

Order of a plan: rename the pool; hand the master role over when the master
left the aggregate; eject members that left; wait for members that are
joining and repair their storage; then preflight + join each new host, one
at a time (xapi restarts the joiner, and a pool master serves one join
safely at a time).
"""

import dataclasses

from poolmgr import computevm
from poolmgr import preflight
from poolmgr import readiness

# Where a desired or known compute host stands, as observed.
IN_POOL = "in_pool"            # listed by the master of this pool
STANDALONE = "standalone"      # answers as the master of its own pool
OTHER_POOL = "other_pool"      # a slave of some other master
UNREACHABLE = "unreachable"
UNREGISTERED = "unregistered"  # no xapi URL in the host inventory
# In a xapi pool another managed aggregate owns (engine/ownership.py).
OWNED_ELSEWHERE = "owned_elsewhere"
# A member of this very pool, whose master does not answer.
MASTER_UNREACHABLE = "master_unreachable"

# Step kinds.
SET_NAME_LABEL = "set_name_label"
DESIGNATE_MASTER = "designate_master"
EJECT = "eject"
REFUSE_EJECT = "refuse_eject"
WAIT_STANDALONE = "wait_standalone"
MARK_REMOVED = "mark_removed"
WAIT_MEMBER = "wait_member"
PLUG_PBD = "plug_pbd"
CREATE_PBD = "create_pbd"
MARK_ACTIVE = "mark_active"
PREFLIGHT = "preflight"
JOIN = "join"
BLOCKED = "blocked"
RELEASE_MASTER = "release_master"
CLEAR_NAME = "clear_name"
DISMISS = "dismiss"

# The compute VM steps (classic topology; engine/steps/compute_vm.py).
STOP_COMPUTE_VM = "stop_compute_vm"
JOIN_COMPUTE_HOST = "join_compute_host"
START_COMPUTE_VM = "start_compute_vm"
COMPUTE_VM_RUNNING = "compute_vm_running"
EJECT_COMPUTE_HOST = "eject_compute_host"
REFUSE_EJECT_COMPUTE_VM = "refuse_eject_compute_vm"
COMPUTE_VM_KINDS = frozenset([STOP_COMPUTE_VM, JOIN_COMPUTE_HOST,
                              START_COMPUTE_VM, COMPUTE_VM_RUNNING,
                              EJECT_COMPUTE_HOST, REFUSE_EJECT_COMPUTE_VM])

MUTATING = frozenset([SET_NAME_LABEL, DESIGNATE_MASTER, EJECT, PLUG_PBD,
                      CREATE_PBD, JOIN, RELEASE_MASTER, CLEAR_NAME,
                      STOP_COMPUTE_VM, JOIN_COMPUTE_HOST, START_COMPUTE_VM,
                      EJECT_COMPUTE_HOST])

MEMBER_ERROR = "error"
MEMBER_ACTIVE = "active"
MEMBER_REMOVED = "removed"
# Member states in which a host missing from the live list is expected to
# show up soon (we asked it to join), rather than having dropped out.
_JOINING_STATES = ("pending", "preflight", "joining")


@dataclasses.dataclass(frozen=True)
class Desired:
    aggregate_id: int
    name: str
    hosts: tuple
    managed: bool          # flagged hypervisor_pool and not deleted


@dataclasses.dataclass
class HostView:
    name: str
    status: str
    url: str = None
    uuid: str = None
    ref: str = None        # IN_POOL: the host's ref in the pool snapshot
    snapshot: object = None  # STANDALONE: the host's own one-host pool
    detail: str = None     # why UNREACHABLE / OTHER_POOL
    code: str = None       # UNREACHABLE: xapi's (or poolmgr's) error code
    params: tuple = ()     # ... and its params
    compute_vm: str = None         # uuid of its registered compute VM
    compute_vm_stopped: bool = False  # ... which poolmgr shut down


@dataclasses.dataclass
class Observed:
    pool: object = None    # records.PoolSnapshot read on the master
    master: str = None     # compute host name of the pool master
    hosts: dict = dataclasses.field(default_factory=dict)   # name -> HostView
    unknown_members: list = dataclasses.field(default_factory=list)
    # ref -> compute host, for unknown members that are registered hosts
    unknown_names: dict = dataclasses.field(default_factory=dict)
    master_problem: str = None   # set when the pool exists but can't be read
    eject_compute_vm: str = computevm.EJECT_REFUSE  # [xenserver] option

    def names_by_ref(self):
        return {v.ref: n for n, v in self.hosts.items()
                if v.status == IN_POOL and v.ref}


@dataclasses.dataclass
class Step:
    kind: str
    host: str = None
    params: dict = dataclasses.field(default_factory=dict)
    failures: tuple = ()
    reason: str = None

    @property
    def mutating(self):
        return self.kind in MUTATING

    def describe(self, master=None):
        """One line an operator can read: the xapi call, or what waits."""
        p = self.params
        on_master = "on master %s" % (p.get("master") or master)
        if self.kind == SET_NAME_LABEL:
            return "pool.set_name_label(%s, %r) %s" % (
                p.get("pool_uuid"), p.get("name"), on_master)
        if self.kind in (CLEAR_NAME, RELEASE_MASTER):
            return "pool.set_name_label(%s, '') on %s (stop managing it)" % (
                p.get("pool_uuid"), self.host)
        if self.kind == DESIGNATE_MASTER:
            return "pool.designate_new_master(%s) %s, then wait until %s " \
                   "is master" % (self.host, on_master, self.host)
        if self.kind == EJECT:
            return "pool.eject(%s) %s, then wait until %s is standalone" % (
                self.host, on_master, self.host)
        if self.kind == JOIN:
            call = "pool.join_force" if p.get("force") else "pool.join"
            return "%s(%s, <[xenserver] credentials>) on %s, then wait " \
                   "until %s lists it live with its shared SRs" % (
                       call, p.get("master_address"), self.host,
                       p.get("master"))
        if self.kind == PLUG_PBD:
            return "PBD.plug(%s) %s (SR %s on %s)" % (
                p.get("pbd_ref"), on_master, p.get("sr_name"), self.host)
        if self.kind == CREATE_PBD:
            return "PBD.create(host=%s, SR=%s, device_config=%s) + " \
                   "PBD.plug %s" % (self.host, p.get("sr_name"),
                                    sorted(p.get("device_config") or {}),
                                    on_master)
        if self.kind == WAIT_MEMBER:
            return "wait until %s is live and enabled with its shared SRs" \
                   % self.host
        if self.kind == WAIT_STANDALONE:
            return "wait until %s answers as a standalone host" % self.host
        if self.kind == PREFLIGHT:
            if self.failures:
                return "preflight of %s fails: %s" % (self.host, ", ".join(
                    f.code for f in self.failures))
            return "preflight of %s passes" % self.host
        if self.kind == REFUSE_EJECT:
            return "refuse to eject %s: %s" % (self.host, self.reason)
        if self.kind in COMPUTE_VM_KINDS:
            return _describe_compute_vm(self, p, on_master)
        return "%s %s%s" % (self.kind, self.host or "",
                            (": " + self.reason) if self.reason else "")


def master_candidates(desired, recorded_master, members):
    """Hosts to look at, in order, to find (or found) the pool's master.

    The recorded master first (it may have handed over: the session follows
    HOST_IS_SLAVE), then members we know are in the pool, then the desired
    hosts in aggregate order: the first host added becomes the master.
    """
    members = members or {}
    names = []
    if recorded_master:
        names.append(recorded_master)
    names += [h for h, m in members.items()
              if m.get("state") == MEMBER_ACTIVE]
    names += [h for h in desired.hosts
              if (members.get(h) or {}).get("state") != MEMBER_ERROR]
    seen = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def plan_pool_changes(desired, observed, members, force=False):
    """The ordered steps that make ``observed`` match ``desired``.

    ``members`` maps compute host -> {"state", "error_code", ...} (the DB
    rows); a member in ``error`` is left alone until desired state changes
    (the row goes away) or an operator retries. ``force`` selects
    pool.join_force. Returns a list of ``Step``.
    """
    members = members or {}
    pool = observed.pool
    master = observed.master
    steps = []

    if not desired.managed:
        # NOTE(dismiss): never eject because the flag went away; a pool that
        # is only its master gets its name back so it is visibly unmanaged.
        if pool is not None and master and len(pool.hosts) == 1 \
                and pool.name_label:
            steps.append(Step(CLEAR_NAME, master,
                              params={"pool_uuid": pool.uuid}))
        steps.append(Step(DISMISS))
        return steps

    if pool is None:
        if observed.master_problem:
            steps.append(Step(BLOCKED, master, reason=observed.master_problem))
        steps += _blocked_hosts(desired, observed, members)
        return steps

    wanted = list(desired.hosts)
    views = observed.hosts
    in_pool = [n for n, v in views.items() if v.status == IN_POOL]

    successors = [n for n in wanted if n in in_pool
                  and pool.host_live(views[n].ref)
                  and pool.host_enabled(views[n].ref)]
    if pool.name_label != desired.name and (master in wanted or successors):
        steps.append(Step(SET_NAME_LABEL, master,
                          params={"pool_uuid": pool.uuid,
                                  "name": desired.name, "master": master}))

    if master not in wanted:
        leaving = [n for n in in_pool if n != master and n not in wanted]
        if successors:
            new_master = successors[0]
            steps.append(Step(DESIGNATE_MASTER, new_master,
                              params={"host_ref": views[new_master].ref,
                                      "master": master,
                                      "old_master": master}))
            # What follows is planned as if the hand-over succeeded; the
            # engine re-observes before acting on it.
            leaving = [master] + leaving
            master = new_master
        else:
            for name in leaving:
                steps += _eject_steps(pool, views[name], master, members,
                                      observed.eject_compute_vm)
            steps.append(Step(RELEASE_MASTER, master,
                              params={"pool_uuid": pool.uuid}))
            return steps
    else:
        leaving = [n for n in in_pool if n != master and n not in wanted]

    for name in leaving:
        steps += _eject_steps(pool, views[name], master, members,
                              observed.eject_compute_vm)

    for name, member in sorted(members.items()):
        if name in wanted or name in in_pool:
            continue
        if member.get("state") not in (MEMBER_REMOVED,):
            steps.append(Step(MARK_REMOVED, name))

    for ref in observed.unknown_members:
        host = pool.hosts.get(ref, {})
        registered = observed.unknown_names.get(ref)
        if registered:
            reason = ("pool member %s (%s) is registered compute host %s but "
                      "is not in this aggregate; poolmgr leaves it alone" % (
                          host.get("name_label"), host.get("address"),
                          registered))
        else:
            reason = ("pool member %s (%s) is not a registered compute host; "
                      "poolmgr leaves it alone" % (host.get("name_label"),
                                                   host.get("address")))
        steps.append(Step(BLOCKED, None, reason=reason))

    repairs = readiness.assess(pool).repairs
    for name in wanted:
        view = views.get(name)
        if view is None or view.status != IN_POOL:
            continue
        member = members.get(name) or {}
        live = pool.host_live(view.ref) and pool.host_enabled(view.ref)
        if not live:
            if member.get("state") in _JOINING_STATES:
                steps.append(Step(WAIT_MEMBER, name,
                                  params={"uuid": view.uuid,
                                          "master": master}))
            continue
        steps += _member_compute_vm_steps(pool, view, master, member)
        owed = [r for r in repairs if r.host_ref == view.ref]
        if member.get("state") == MEMBER_ERROR:
            # NOTE(parked): a parked member's repair is not retried every
            # pass (only `pool retry` does); it is active again only once
            # nothing is owed on it any more (its PBDs were plugged).
            if not owed and not _compute_vm_owed(pool, view):
                steps.append(Step(MARK_ACTIVE, name))
            continue
        for repair in owed:
            if repair.kind == PLUG_PBD:
                steps.append(Step(PLUG_PBD, name, params={
                    "pbd_ref": repair.pbd_ref, "sr_ref": repair.sr_ref,
                    "sr_name": repair.sr_name, "master": master}))
            else:
                steps.append(Step(CREATE_PBD, name, params={
                    "host_ref": repair.host_ref, "sr_ref": repair.sr_ref,
                    "sr_name": repair.sr_name,
                    "device_config": repair.device_config,
                    "master": master}))
        if member.get("state") != MEMBER_ACTIVE or member.get("error_code"):
            # An active member's code (a 'blocked' step recorded it while
            # it was unreachable) is cleared once it is healthy again.
            steps.append(Step(MARK_ACTIVE, name))

    master_address = pool.master.get("address")
    for name in wanted:
        view = views.get(name)
        if view is None or view.status == IN_POOL:
            continue
        if (members.get(name) or {}).get("state") == MEMBER_ERROR:
            continue
        if view.status == STANDALONE and view.compute_vm:
            steps += _join_compute_host_steps(view, pool, master,
                                              master_address, force)
        elif view.status == STANDALONE:
            failures = preflight.check_join(view.snapshot, pool, force=force)
            steps.append(Step(PREFLIGHT, name, failures=tuple(failures),
                              params={"master": master}))
            if not failures:
                steps.append(Step(JOIN, name, params={
                    "master_address": master_address, "master": master,
                    "force": bool(force), "uuid": view.uuid}))
                steps.append(Step(WAIT_MEMBER, name, params={
                    "uuid": view.uuid, "master": master}))
        else:
            steps.append(_blocked(view))
    return steps


def _eject_steps(pool, view, master, members,
                 compute_mode=computevm.EJECT_REFUSE):
    ref = view.ref
    if (members.get(view.name) or {}).get("state") == MEMBER_ERROR:
        return []
    if view.compute_vm:
        special = _eject_compute_host_steps(pool, view, master, compute_mode)
        if special is not None:
            return special
    resident = pool.resident_vms(ref)
    if resident:
        names = sorted(vm.get("name_label", "?") for vm in resident)
        return [Step(REFUSE_EJECT, view.name, params={"vms": names},
                     reason="VMs still resident: %s" % ", ".join(names))]
    if not pool.host_live(ref):
        return [Step(BLOCKED, view.name, reason=(
            "%s is offline; pool.eject needs it live (forget a dead host "
            "with xe host-forget)" % view.name))]
    return [Step(EJECT, view.name, params={"host_ref": ref, "master": master,
                                           "uuid": view.uuid}),
            Step(WAIT_STANDALONE, view.name, params={"uuid": view.uuid})]


def _blocked(view):
    if view.status == UNREGISTERED:
        reason = ("%s has no xapi URL: poolmgr-manage host register %s URL"
                  % (view.name, view.name))
    elif view.status == OTHER_POOL:
        reason = ("%s is a member of another pool (master %s): eject it "
                  "there first" % (view.name, view.detail))
    elif view.status == OWNED_ELSEWHERE:
        # Parked: only an operator ends the contest (engine/ownership.py).
        return Step(BLOCKED, view.name, reason=view.detail, params={
            "code": view.code, "params": list(view.params), "park": True})
    elif view.status == MASTER_UNREACHABLE:
        reason = view.detail
    else:
        reason = "%s is unreachable: %s" % (view.name, view.detail)
        if view.code:
            # The operator sees xapi's code on the member (pool show),
            # e.g. SESSION_AUTHENTICATION_FAILED for wrong credentials.
            return Step(BLOCKED, view.name, reason=reason,
                        params={"code": view.code,
                                "params": list(view.params)})
    return Step(BLOCKED, view.name, reason=reason)


def _blocked_hosts(desired, observed, members):
    steps = []
    for name in desired.hosts:
        view = observed.hosts.get(name)
        if (members.get(name) or {}).get("state") == MEMBER_ERROR:
            continue
        if view is not None and view.status not in (IN_POOL, STANDALONE):
            steps.append(_blocked(view))
    return steps


# -- the compute VM (classic topology, issue 12) ------------------------------

def _describe_compute_vm(step, p, on_master):
    vm = "compute VM %s (%s)" % (p.get("name_label") or "?",
                                 p.get("compute_vm"))
    if step.kind == STOP_COMPUTE_VM:
        where = (on_master if p.get("where") == "pool"
                 else "on %s" % step.host)
        return "VM.clean_shutdown(%s) %s, VM.hard_shutdown after [xenserver]" \
               " compute_vm_shutdown_timeout" % (vm, where)
    if step.kind == JOIN_COMPUTE_HOST:
        call = "pool.join_force" if p.get("force") else "pool.join"
        return "%s(%s, <[xenserver] credentials>) on %s (its %s is shut " \
               "down; started again on %s at once if the join fails)" % (
                   call, p.get("master_address"), step.host, vm, step.host)
    if step.kind == START_COMPUTE_VM:
        if p.get("where") == "pool":
            return "VM.start_on(%s, %s) %s, then check it runs there" % (
                vm, step.host, on_master)
        return "VM.start_on(%s, %s) on %s (standalone: %s)" % (
            vm, step.host, step.host, step.reason or "not joining")
    if step.kind == COMPUTE_VM_RUNNING:
        return "%s of %s runs again: record the downtime" % (vm, step.host)
    if step.kind == EJECT_COMPUTE_HOST:
        return "pool.eject(%s) %s%s: the eject destroys the %s (its disk " \
               "is on the local SR), then wait until %s is standalone" % (
                   step.host, on_master, ", after VM.clean_shutdown of it"
                   if p.get("running") else "", vm, step.host)
    return "refuse to eject %s: %s" % (step.host, step.reason)


def _compute_vm_params(view, vm):
    return {"compute_vm": view.compute_vm,
            "name_label": (vm or {}).get("name_label")}


def _join_compute_host_steps(view, pool, master, master_address, force):
    """A standalone host with a compute VM: stop it, join, start it there.

    Only a VM poolmgr stopped (``compute_vm_stopped``) is started again;
    one an operator shut down stays halted. When the join cannot happen
    (preflight fails) a VM poolmgr stopped is started again first.
    """
    snap = view.snapshot
    me = snap.master_ref
    vm_state, vm = computevm.state(snap, view.compute_vm, me)
    cvm = _compute_vm_params(view, vm)
    ours = vm_state == computevm.RUNNING or (vm_state == computevm.HALTED
                                      and view.compute_vm_stopped)
    steps = []
    failures = preflight.check_join(snap, pool, force=force,
                                    compute_vm_uuid=view.compute_vm)
    if failures:
        if vm_state == computevm.HALTED and view.compute_vm_stopped:
            steps.append(Step(START_COMPUTE_VM, view.name, reason=(
                "preflight fails"), params=dict(cvm, where="standalone",
                                                host_ref=me)))
        steps.append(Step(PREFLIGHT, view.name, failures=tuple(failures),
                          params={"master": master}))
        return steps
    steps.append(Step(PREFLIGHT, view.name, params={"master": master}))
    join = {"master_address": master_address, "master": master,
            "force": bool(force), "uuid": view.uuid}
    if vm_state == computevm.RUNNING:
        steps.append(Step(STOP_COMPUTE_VM, view.name, params=dict(
            cvm, where="standalone", purpose="join")))
    if ours:
        steps.append(Step(JOIN_COMPUTE_HOST, view.name, params=dict(
            join, host_ref=me, **cvm)))
    else:
        steps.append(Step(JOIN, view.name, params=join))
    steps.append(Step(WAIT_MEMBER, view.name, params={
        "uuid": view.uuid, "master": master}))
    if ours:
        steps.append(Step(START_COMPUTE_VM, view.name, params=dict(
            cvm, where="pool", master=master)))
    return steps



def _member_compute_vm_steps(pool, view, master, member=None):
    """A live member whose compute VM poolmgr stopped: start it there.

    Not while the member is in error (a start xapi refused): the error
    shows xapi's code until an operator runs ``pool retry``."""
    if not view.compute_vm or not view.compute_vm_stopped:
        return []
    if (member or {}).get("state") == MEMBER_ERROR:
        return []
    vm_state, vm = computevm.state(pool, view.compute_vm, view.ref)
    cvm = _compute_vm_params(view, vm)
    if vm_state == computevm.HALTED:
        return [Step(START_COMPUTE_VM, view.name, params=dict(
            cvm, where="pool", host_ref=view.ref, master=master))]
    return [Step(COMPUTE_VM_RUNNING, view.name, params=dict(
        cvm, state=vm_state))]


def _compute_vm_owed(pool, view):
    """poolmgr stopped the member's compute VM and it is still halted."""
    return bool(view.compute_vm and view.compute_vm_stopped) and \
        computevm.state(pool, view.compute_vm, view.ref)[0] == \
        computevm.HALTED


def _eject_compute_host_steps(pool, view, master, mode):
    """Eject of a host with a compute VM (None: no special handling).

    The eject wipes the local SR the compute VM lives on. ``refuse``
    (default): the member goes to error naming the VM and the way out;
    ``shutdown``: clean shutdown, eject, and poolmgr forgets the VM.
    """
    vm_state, vm = computevm.state(pool, view.compute_vm, view.ref)
    if vm_state in (computevm.MISSING, computevm.RUNNING_ELSEWHERE):
        return None
    others = sorted(v.get("name_label", "?")
                    for v in pool.resident_vms(view.ref)
                    if v.get("uuid") != view.compute_vm)
    if others:
        return [Step(REFUSE_EJECT, view.name, params={"vms": others},
                     reason="VMs still resident: %s" % ", ".join(others))]
    cvm = _compute_vm_params(view, vm)
    if mode != computevm.EJECT_SHUTDOWN:
        return [Step(REFUSE_EJECT_COMPUTE_VM, view.name, params=dict(
            cvm, power_state=vm.get("power_state")), reason=(
            "pool.eject would destroy its compute VM %s (%s): its disk is on "
            "%s's local SR, which eject wipes. Move nova-compute off %s and "
            "run 'poolmgr-manage host register %s URL --compute-vm none', "
            "or set [xenserver] eject_compute_vm = shutdown to shut it down "
            "and let the eject destroy it; then 'poolmgr-manage pool retry'"
            % (cvm["name_label"], view.compute_vm, view.name, view.name,
               view.name)))]
    if not pool.host_live(view.ref):
        return None
    return [Step(EJECT_COMPUTE_HOST, view.name, params=dict(
        cvm, host_ref=view.ref, master=master, uuid=view.uuid,
        running=vm_state == computevm.RUNNING)),
        Step(WAIT_STANDALONE, view.name, params={"uuid": view.uuid})]


def is_converged(steps):
    """True when nothing is left to do (a dismissed pool is settled too)."""
    return all(s.kind in (DISMISS,) for s in steps)
