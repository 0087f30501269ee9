"""What poolmgr-manage shows: the JSON contract and the tables for people.

``pool_view`` builds the object ``pool show --format json`` prints; its keys
(aggregate_id, name, state, master, pool_uuid, members[host, state,
xenserver_uuid], live_migration_ready, reasons) are a contract that
operators' scripts rely on (ARCHITECTURE.md).
"""

import datetime
import sys

import prettytable

from poolmgr.db import states
from poolmgr import events
from poolmgr.plan import proof

UNMANAGED = "unmanaged"


def _time(value):
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _table(headers):
    table = prettytable.PrettyTable(headers)
    table.align = "l"
    if not sys.stdout.isatty():
        # NOTE(plain): scripts that grep a table should not meet box-drawing.
        table.set_style(prettytable.TableStyle.PLAIN_COLUMNS)
    return table


def host_view(row):
    return {"compute_host": row["compute_host"], "xapi_url": row["xapi_url"],
            "xenserver_uuid": row["xenserver_uuid"],
            "compute_vm_uuid": row.get("compute_vm_uuid"),
            "compute_vm_stopped_at": _time(row.get("compute_vm_stopped_at")),
            "sha256_fingerprint": row.get("sha256_fingerprint"),
            "created_at": _time(row["created_at"]),
            "updated_at": _time(row["updated_at"])}


def host_table(hosts):
    table = _table(["compute host", "xapi url", "xenserver uuid"])
    for h in hosts:
        table.add_row([h["compute_host"], h["xapi_url"],
                       h["xenserver_uuid"] or "-"])
    return table.get_string()


def record_table(record):
    table = _table(["field", "value"])
    for key in sorted(record):
        value = record[key]
        if isinstance(value, (list, dict)):
            value = ", ".join("%s" % v for v in value) if isinstance(
                value, list) else ", ".join(
                "%s=%s" % kv for kv in sorted(value.items()))
        table.add_row([key, "-" if value is None else value])
    return table.get_string()


def _member_view(member):
    return {"host": member["host"], "state": member["state"],
            "xenserver_uuid": member["xenserver_uuid"],
            "error_code": member["error_code"],
            "error_params": member["error_params"] or [],
            "attempts": member["attempts"],
            "updated_at": _time(member["updated_at"])}


def maintenance_view(op):
    """A maintenance operation (``pool show``'s ``operation``)."""
    if op is None:
        return None
    return {"id": op["id"], "kind": op["kind"], "hosts": list(op["hosts"]),
            "host": op["current_host"], "phase": op["phase"],
            "status": op["status"], "reason": op["reason"],
            "started_at": _time(op["created_at"]),
            "finished_at": _time(op["finished_at"])}


_UNASKED = object()


def pool_view(agg, pool, members, operation=_UNASKED):
    """The ``pool show`` object for one aggregate, from its rows
    (``db_api.pool_rows``: its pool row or None, and the member rows).
    ``operation``: the pool's newest maintenance operation row (or None),
    shown as ``operation`` when the caller looked it up."""
    known = {m["host"] for m in members}
    member_views = [_member_view(m) for m in members]
    is_pool = (not agg["deleted"]) and events.POOL_FLAG in agg["metadata"]
    if is_pool:
        for host in agg["hosts"]:
            if host not in known:
                member_views.append({
                    "host": host, "state": states.MEMBER_PENDING,
                    "xenserver_uuid": None, "error_code": None,
                    "error_params": [], "attempts": 0, "updated_at": None})
    if pool is None:
        state = states.POOL_DISMISSED if agg["deleted"] else UNMANAGED
        pool = {}
    else:
        state = pool["state"]
    reasons = list(pool.get("reasons") or [])
    if not pool:
        reasons = ["aggregate is not flagged %s" % events.POOL_FLAG]
    return {
        "aggregate_id": agg["id"],
        "uuid": agg["uuid"],
        "name": agg["name"],
        "state": state,
        "master": pool.get("master"),
        "pool_uuid": pool.get("pool_uuid"),
        "desired_hosts": list(agg["hosts"]),
        "members": member_views,
        "live_migration_ready": bool(pool.get("live_migration_ready")),
        "live_migration_proof": proof.summary(
            pool.get("canary_proof"), _member_uuids(members)),
        "live_migration_proof_detail": pool.get("canary_proof"),
        "reasons": reasons,
        "shared_srs": pool.get("sr_matrix") or [],
        "last_error_code": pool.get("last_error_code"),
        "last_error": pool.get("last_error"),
        "last_reconciled_at": _time(pool.get("last_reconciled_at")),
        "deleted": bool(agg["deleted"]),
        # A lost master: what was seen and done (engine/failover.py).
        "failover": pool.get("failover"),
        "promote_request": pool.get("promote_request"),
    } | ({} if operation is _UNASKED else {
        "operation": maintenance_view(operation)})



def _member_uuids(members):
    # NOTE(stale-view): the members a proof would cross, from our rows; a
    # host not joined yet has no say.
    return [m["xenserver_uuid"] for m in members if m["xenserver_uuid"]
            and m["state"] not in (states.MEMBER_REMOVED,
                                   states.MEMBER_PENDING,
                                   states.MEMBER_PREFLIGHT,
                                   states.MEMBER_JOINING)]


def all_pool_views(rows, operations=None):
    """``pool list``: the pool_view of each of ``db_api.all_pool_rows()``
    (with ``operations``, {aggregate id: newest maintenance operation})."""
    if operations is None:
        return [pool_view(agg, pool, members) for agg, pool, members in rows]
    return [pool_view(agg, pool, members, operations.get(agg["id"]))
            for agg, pool, members in rows]


def pool_list_table(pools):
    table = _table(["id", "name", "state", "master", "members", "ready",
                    "errors"])
    for p in pools:
        errors = sorted({m["error_code"] for m in p["members"]
                         if m["error_code"]})
        if p["last_error_code"] and p["last_error_code"] not in errors:
            errors.append(p["last_error_code"])
        desired = set(p["desired_hosts"])
        table.add_row([p["aggregate_id"], p["name"], p["state"],
                       p["master"] or "-",
                       "%d/%d" % (sum(1 for m in p["members"]
                                      if m["state"] == "active"
                                      and m["host"] in desired),
                                  len(desired)),
                       "yes" if p["live_migration_ready"] else "no",
                       ", ".join(errors) or "-"])
    return table.get_string()


def pool_show_text(p):
    lines = [
        "aggregate %s (%s)  state: %s" % (p["aggregate_id"], p["name"],
                                          p["state"]),
        "master: %s   pool uuid: %s" % (p["master"] or "-",
                                         p["pool_uuid"] or "-"),
        "last reconciled: %s" % (p["last_reconciled_at"] or "never"),
    ]
    if p["last_error_code"] or p["last_error"]:
        lines.append("last error: %s %s" % (p["last_error_code"] or "",
                                            p["last_error"] or ""))
    members = _table(["member", "state", "xenserver uuid", "xapi error"])
    for m in p["members"]:
        error = m["error_code"] or "-"
        if m["error_params"]:
            error += " " + " ".join(str(x) for x in m["error_params"])
        members.add_row([m["host"], m["state"], m["xenserver_uuid"] or "-",
                         error])
    lines.append(members.get_string())
    if p["shared_srs"]:
        hosts = [m["host"] for m in p["members"]
                 if m["state"] != states.MEMBER_REMOVED]
        srs = _table(["shared SR"] + hosts)
        for sr in p["shared_srs"]:
            cells = sr.get("hosts", {})
            srs.add_row([sr.get("name_label") or sr.get("uuid")] +
                        [cells.get(h, "missing") for h in hosts])
        lines.append(srs.get_string())
    op = p.get("operation")
    if op is not None:
        lines.append("maintenance: %s %s (operation %s) %s%s" % (
            op["kind"].replace("_", " "), ", ".join(op["hosts"]), op["id"],
            op["status"], (": host %s, phase %s" % (op["host"], op["phase"]))
            if op["status"] == states.MAINT_RUNNING else ""))
    lines.append("live migration: %s" % (
        "ready" if p["live_migration_ready"] else "NOT ready"))
    if p.get("live_migration_proof"):
        lines.append("live migration proof: %s" % p["live_migration_proof"])
    for reason in p["reasons"]:
        lines.append("  - %s" % reason)
    return "\n".join(lines)


def operation_view(op):
    return {"id": op["id"], "kind": op["kind"], "host": op["host"],
            "step": op["step"], "status": op["status"],
            "attempts": op["attempts"],
            "xapi_error_code": op["xapi_error_code"],
            "xapi_error_params": op["xapi_error_params"] or [],
            "cause": op["cause"], "owner": op["owner"],
            "generation": op["generation"],
            "started_at": _time(op["started_at"]),
            "finished_at": _time(op["finished_at"]),
            # compute node downtime of a join (compute VM topology)
            "downtime_s": op.get("downtime_s")}


def history_table(ops):
    table = _table(["id", "started", "kind", "host", "status", "xapi error",
                    "downtime", "cause"])
    for op in ops:
        error = op["xapi_error_code"] or "-"
        if op["xapi_error_params"]:
            error += " " + " ".join(str(x) for x in op["xapi_error_params"])
        downtime = op.get("downtime_s")
        table.add_row([op["id"], op["started_at"], op["kind"],
                       op["host"] or "-", op["status"], error,
                       "-" if downtime is None else "%.1f s" % downtime,
                       op["cause"] or "-"])
    return table.get_string()


def progress_line(op):
    error = ""
    if op.get("xapi_error_code"):
        error = " %s %s" % (op["xapi_error_code"], " ".join(
            str(x) for x in op.get("xapi_error_params") or []))
    return "[%s] %s %s %s%s" % (op["status"], op["kind"], op.get("host") or "",
                                op.get("step") or "", error)


def notification_view(n):
    return {"message_id": n["message_id"], "event_type": n["event_type"],
            "publisher_id": n["publisher_id"],
            "aggregate_id": n["aggregate_id"], "outcome": n["outcome"],
            "reason": n["reason"], "event_time": _time(n["event_time"]),
            "received_at": _time(n["received_at"])}


def events_table(rows):
    table = _table(["received", "event type", "aggregate", "outcome",
                    "message id", "reason"])
    for n in rows:
        table.add_row([n["received_at"], n["event_type"] or "-",
                       n["aggregate_id"] if n["aggregate_id"] is not None
                       else "-", n["outcome"], n["message_id"],
                       (n["reason"] or "-")[:60]])
    return table.get_string()


def status_view(pools, totals):
    """``status`` from the pool views and ``db_api.intake_totals()``."""
    by_state = {}
    for p in pools:
        by_state[p["state"]] = by_state.get(p["state"], 0) + 1
    outcomes = {}
    for (_, outcome), count in totals["notification_counts"].items():
        outcomes[outcome] = outcomes.get(outcome, 0) + count
    # Totals from the counters table: a purge of the log never lowers them.
    duplicates = sum(totals["duplicate_counts"].values())
    if duplicates:
        outcomes[states.DUPLICATE] = duplicates
    errors = []
    for p in pools:
        for m in p["members"]:
            if m["error_code"]:
                errors.append({"aggregate_id": p["aggregate_id"],
                               "host": m["host"], "code": m["error_code"],
                               "params": m["error_params"]})
        if p["last_error_code"]:
            errors.append({"aggregate_id": p["aggregate_id"], "host": None,
                           "code": p["last_error_code"],
                           "params": [p["last_error"]]})
    return {
        "last_notification_at": _time(totals["last_notification_at"]),
        "notifications_by_outcome": outcomes,
        "notifications_skipped": totals["skipped"],
        "pools_by_state": by_state,
        "pools_total": len(pools),
        "pools_ready": sum(1 for p in pools if p["live_migration_ready"]),
        "errors": errors,
    }


def status_text(data):
    lines = ["last notification: %s" % (data["last_notification_at"]
                                         or "none yet"),
             "notifications: %s" % (", ".join(
                 "%s=%d" % kv for kv in sorted(
                     data["notifications_by_outcome"].items())) or "none"),
             "other messages skipped: %d" % data["notifications_skipped"],
             "pools: %d (%s), ready for live migration: %d" % (
                 data["pools_total"], ", ".join(
                     "%s=%d" % kv for kv in sorted(
                         data["pools_by_state"].items())) or "none",
                 data["pools_ready"])]
    if data["errors"]:
        lines.append("errors:")
        for e in data["errors"]:
            lines.append("  aggregate %s %s: %s %s" % (
                e["aggregate_id"], e["host"] or "(pool)", e["code"],
                " ".join(str(x) for x in e["params"] or [])))
    else:
        lines.append("errors: none")
    return "\n".join(lines)


def plan_view(plan):
    """Normalise the reconciler's plan object to plain data."""
    if hasattr(plan, "as_dict"):
        return plan.as_dict()
    return dict(plan)


def plan_text(data):
    lines = ["plan for aggregate %s (%s)" % (data.get("aggregate_id"),
                                             data.get("name"))]
    calls = data.get("calls") or []
    if calls:
        lines.append("xapi calls the engine would make, in order:")
        for i, call in enumerate(calls, 1):
            lines.append("  %d. %s" % (i, call if isinstance(call, str)
                                       else call.get("text") or call))
    failures = data.get("failures") or []
    if not calls and failures:
        lines.append("no xapi call can close the gap until these are fixed:")
    elif not calls:
        lines.append("nothing to do: the pool matches the aggregate")
    if failures:
        lines.append("failing checks:")
        for f in failures:
            lines.append("  %s: %s %s" % (
                f.get("host") or "(pool)", f.get("code"),
                " ".join(str(x) for x in f.get("params") or [])))
            if f.get("remediation"):
                lines.append("      fix: %s" % f["remediation"])
    return "\n".join(lines)
