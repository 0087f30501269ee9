"""The dry run (``poolmgr-manage pool plan``): observe, plan, no change."""

import dataclasses

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import observe
from poolmgr.engine import ownership
from poolmgr.plan import planner
from poolmgr.plan import preflight
from poolmgr.plan import readiness

# Steps that write only our own tables: a dry run shows nothing for them.
_SILENT = (planner.MARK_ACTIVE, planner.MARK_REMOVED, planner.DISMISS)


@dataclasses.dataclass
class Plan:
    """What ``poolmgr-manage pool plan`` prints (views.plan_view)."""

    aggregate_id: int
    name: str
    master: str
    calls: list
    failures: list
    live_migration_ready: bool = False
    reasons: list = dataclasses.field(default_factory=list)

    def as_dict(self):
        return dataclasses.asdict(self)


def _blocked_failure(step, observed, pool_row):
    if step.host is None and observed.master_problem:
        # NOTE(master): the pool exists but its master does not answer;
        # say so, instead of a check of host None.
        return {"host": pool_row.get("master") or "(pool master)",
                "code": "MASTER_UNREACHABLE", "params": [],
                "remediation": step.reason}
    return {"host": step.host or "(pool)",
            "code": step.params.get("code") or "BLOCKED",
            "params": _without_fix(step.params.get("params")),
            "remediation": step.reason}


def _without_fix(params):
    """The params, less the "fix: ..." one: plan prints its own fix line."""
    return [p for p in params or []
            if not (isinstance(p, str) and p.startswith("fix: "))]


def _parked_failures(ctx, desired, observed, members, failures, force,
                     pool_row=None):
    """Desired hosts parked in error and outside the pool, with every check.

    A pass leaves them alone until ``pool retry``; the dry run still reads
    them, so the operator sees each check that fails now, with xapi's code
    and the fix, or the error they were parked with.
    """
    shown = {f["host"] for f in failures}
    result = _parked_leaving(desired, members, shown, pool_row or {})
    for name in desired.hosts:
        member = members.get(name) or {}
        view = observed.hosts.get(name)
        if name in shown or member.get("state") != db_api.MEMBER_ERROR or (
                view is not None and view.status == planner.IN_POOL):
            continue
        retry = "then `poolmgr-manage pool retry %s %s`" % (
            desired.aggregate_id, name)
        checks = []
        if observed.pool is not None and \
                member.get("error_code") != ownership.OWNED_CODE:
            view = observe.observe_one(ctx, name, ctx.inventory, record=False)
            if view.status == planner.STANDALONE:
                checks = [dict(f.as_dict(), host=name,
                               remediation="%s, %s" % (f.remediation, retry))
                          for f in preflight.check_join(
                              view.snapshot, observed.pool, force=force)]
        fixes = [p[len("fix: "):] for p in member.get("error_params") or []
                 if isinstance(p, str) and p.startswith("fix: ")]
        result += checks or [{
            "host": name, "code": member.get("error_code") or "ERROR",
            "params": _without_fix(member.get("error_params")),
            "remediation": fixes[0] if fixes else
            "parked in error: fix the cause, " + retry}]
    return result


def _parked_leaving(desired, members, shown, pool_row):
    """Members no longer desired but parked in error (e.g. an eject
    refused): a pass leaves them in the pool until ``pool retry``, so the
    pool does not match the aggregate; say why, with the fix."""
    result = []
    for name, member in sorted(members.items()):
        if name in desired.hosts or name in shown or \
                member.get("state") != db_api.MEMBER_ERROR:
            continue
        retry = "then `poolmgr-manage pool retry %s %s`" % (
            desired.aggregate_id, name)
        # The pool's last error says why and how, when it is this host's.
        last = pool_row.get("last_error") or ""
        why = "fix the cause, " + retry
        if last.startswith(name + ": ") and \
                pool_row.get("last_error_code") == member.get("error_code"):
            why = "%s; %s" % (last[len(name) + 2:].split(
                "; then 'poolmgr-manage pool retry'")[0], retry)
        result.append({
            "host": name, "code": member.get("error_code") or "ERROR",
            "params": _without_fix(member.get("error_params")),
            "remediation": "left the aggregate but parked in error, still "
            "in the pool: " + why})
    return result


def plan_pool(conf, sessions, aggregate_id):
    """Observe xapi now; return what a pass would do. Mutates nothing."""
    agg = db_api.get_aggregate(aggregate_id)
    if agg is None:
        raise db_api.NotFound("aggregate %s not found" % aggregate_id)
    desired = context.desired_of(agg)
    pool_row = db_api.get_pool(aggregate_id) or {
        "master": None, "pool_uuid": None, "state": db_api.POOL_CREATED}
    members = {m["host"]: m for m in db_api.list_members(aggregate_id)}
    ctx = context.PassContext(aggregate_id, None, conf=conf,
                              sessions=sessions)
    observed = observe.observe(ctx, desired, pool_row, members, record=False)
    steps = planner.plan_pool_changes(desired, observed, members,
                                      force=conf.xenserver.use_join_force)
    master = observed.master
    calls, failures = [], []
    for step in steps:
        if step.kind == planner.PREFLIGHT:
            for f in step.failures:
                failures.append(dict(f.as_dict(), host=step.host))
        elif step.kind == planner.BLOCKED:
            failures.append(_blocked_failure(step, observed, pool_row))
        elif step.kind == planner.REFUSE_EJECT:
            failures.append({"host": step.host,
                             "code": "HOST_HAS_RESIDENT_VMS",
                             "params": step.params["vms"],
                             "remediation": "migrate or shut down these "
                             "VMs, then 'poolmgr-manage pool retry'"})
        elif step.kind == planner.REFUSE_EJECT_COMPUTE_VM:
            failures.append({"host": step.host,
                             "code": "EJECT_WOULD_DESTROY_COMPUTE_VM",
                             "params": [step.params.get("name_label") or "",
                                        step.params["compute_vm"]],
                             "remediation": step.reason})
        elif step.kind not in _SILENT:
            calls.append({"kind": step.kind, "host": step.host,
                          "mutating": step.mutating,
                          "text": step.describe(master)})
    failures += _parked_failures(ctx, desired, observed, members, failures,
                                 conf.xenserver.use_join_force, pool_row)
    ready, reasons = False, []
    if observed.pool is not None:
        result = readiness.assess(observed.pool,
                                  names=observed.names_by_ref())
        ready, reasons = result.ready, result.reasons
    return Plan(aggregate_id=aggregate_id, name=desired.name, master=master,
                calls=calls, failures=failures, live_migration_ready=ready,
                reasons=reasons)
