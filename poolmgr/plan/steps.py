"""The planner's vocabulary: host statuses, step kinds, and the Step.

What poolmgr.plan.planner plans from (``Desired``, ``Observed`` with its
``HostView``s) and what it returns (``Step``s of the kinds below), with
``Step.describe``, the line an operator reads (the compute VM kinds'
lines included). Pure data, below both the planner and its compute VM
rules (poolmgr.plan.computevm_rules): both build steps from here, so neither
imports the other and the planner needs no import inside a function.
poolmgr.plan.planner re-exports every name, so callers keep saying
``planner.JOIN``, ``planner.Step``, ``planner.HostView``.
"""

import dataclasses

from poolmgr.plan import computevm

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

# A lost master's promotion (engine/failover.py, planner_failover.py).
EMERGENCY_TRANSITION = "emergency_transition_to_master"
RECOVER_SLAVES = "recover_slaves"

MUTATING = frozenset([SET_NAME_LABEL, DESIGNATE_MASTER, EJECT, PLUG_PBD,
                      CREATE_PBD, JOIN, RELEASE_MASTER, CLEAR_NAME,
                      STOP_COMPUTE_VM, JOIN_COMPUTE_HOST, START_COMPUTE_VM,
                      EJECT_COMPUTE_HOST])

MEMBER_ERROR = "error"
MEMBER_ACTIVE = "active"
MEMBER_REMOVED = "removed"
MEMBER_FENCED = "fenced"


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
        if self.kind == EMERGENCY_TRANSITION:
            return "pool.emergency_transition_to_master() on %s (slave-" \
                   "local session), in place of lost master %s, then wait " \
                   "until %s is master" % (self.host, p.get("old_master"),
                                           self.host)
        if self.kind == RECOVER_SLAVES:
            return "pool.recover_slaves() on new master %s, then ask every " \
                   "member which master it names" % self.host
        if self.kind in COMPUTE_VM_KINDS:
            return _describe_compute_vm(self, p, on_master)
        return "%s %s%s" % (self.kind, self.host or "",
                            (": " + self.reason) if self.reason else "")


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
