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

The vocabulary (the host statuses and step kinds, ``Desired``,
``HostView``, ``Observed``, ``Step``) is poolmgr.plan.steps and the
compute VM rules poolmgr.plan.computevm_rules; every name of the vocabulary
is re-exported here, so callers say ``planner.JOIN``, ``planner.Step``.
"""

from poolmgr.plan import computevm
from poolmgr.plan.computevm_rules import (
    compute_vm_owed, eject_compute_host_steps, join_compute_host_steps,
    member_compute_vm_steps)
from poolmgr.plan.steps import (  # noqa: F401 - re-exported
    BLOCKED, CLEAR_NAME, COMPUTE_VM_KINDS, COMPUTE_VM_RUNNING, CREATE_PBD,
    DESIGNATE_MASTER, DISMISS, EJECT, EJECT_COMPUTE_HOST, IN_POOL, JOIN,
    JOIN_COMPUTE_HOST, MARK_ACTIVE, MARK_REMOVED, MASTER_UNREACHABLE,
    MEMBER_ACTIVE, MEMBER_ERROR, MEMBER_FENCED, MEMBER_REMOVED, MUTATING,
    OTHER_POOL, OWNED_ELSEWHERE, PLUG_PBD, PREFLIGHT, REFUSE_EJECT,
    REFUSE_EJECT_COMPUTE_VM, RELEASE_MASTER, SET_NAME_LABEL, STANDALONE,
    START_COMPUTE_VM, STOP_COMPUTE_VM, UNREACHABLE, UNREGISTERED,
    WAIT_MEMBER, WAIT_STANDALONE, Desired, HostView, Observed, Step)
from poolmgr.plan.steps import (  # noqa: F401 - re-exported
    EMERGENCY_TRANSITION, RECOVER_SLAVES)
from poolmgr.plan import preflight
from poolmgr.plan import readiness

# Member states in which a host missing from the live list is expected to
# show up soon (we asked it to join), rather than having dropped out.
_JOINING_STATES = ("pending", "preflight", "joining")


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
    # NOTE(fenced): a master replaced by a promotion may come back still
    # master of its stale copy of the pool (same pool uuid): never a
    # candidate, or observation would adopt the stale pool.
    names += [h for h in desired.hosts
              if (members.get(h) or {}).get("state") not in (MEMBER_ERROR,
                                                              MEMBER_FENCED)]
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
        if member.get("state") == MEMBER_FENCED:
            continue    # planner_failover.fenced_steps says why
        live = pool.host_live(view.ref) and pool.host_enabled(view.ref)
        if not live:
            if member.get("state") in _JOINING_STATES:
                steps.append(Step(WAIT_MEMBER, name,
                                  params={"uuid": view.uuid,
                                          "master": master}))
            continue
        steps += member_compute_vm_steps(pool, view, master, member)
        owed = [r for r in repairs if r.host_ref == view.ref]
        if member.get("state") == MEMBER_ERROR:
            # NOTE(parked): a parked member's repair is not retried every
            # pass (only `pool retry` does); it is active again only once
            # nothing is owed on it any more (its PBDs were plugged).
            if not owed and not compute_vm_owed(pool, view):
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
        if (members.get(name) or {}).get("state") in (MEMBER_ERROR,
                                                      MEMBER_FENCED):
            continue
        if view.status == STANDALONE and view.compute_vm:
            steps += join_compute_host_steps(view, pool, master,
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
        special = eject_compute_host_steps(pool, view, master, compute_mode)
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


def is_converged(steps):
    """True when nothing is left to do (a dismissed pool is settled too)."""
    return all(s.kind in (DISMISS,) for s in steps)
