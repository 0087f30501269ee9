"""The canary proof of live migration, as data: its record and its words.

Pure. A proof (poolmgr.engine.canary runs it) starts a small VM from
``[xenserver] canary_vm_template`` on the master and live-migrates it to
every other member in turn. Its record, stored in ``pools.canary_proof``,
is a dict::

    {"status": "proven" | "failed" | "single", "at": "2026-12-04T18:00:00Z",
     "template": NAME, "members": [xenserver uuids, sorted],
     "hops": [{"from": HOST, "to": HOST, "seconds": S}, ...],
     "failure": {"step": "start" | "migrate" | "template", "from": HOST,
                 "to": HOST, "code": CODE or None, "params": [...],
                 "message": TEXT, "transient": BOOL} or None,
     "leftover": TEXT or None}

NOTE(stale): a proof speaks for the members it crossed. It is stale once
the pool's membership (the set of member uuids) differs, so a join or an
eject asks for a new proof, while a resync, a restart of poolmgr or a
member's reboot does not.
"""

import statistics

PROVEN = "proven"
FAILED = "failed"
SINGLE = "single"
# other_config key (value: the aggregate id) that marks a canary VM.
TAG = "poolmgr_canary"


def vm_name(aggregate_id):
    return "poolmgr-canary-%s" % aggregate_id


def membership(snapshot):
    """The sorted member uuids of a records.PoolSnapshot."""
    return sorted(h.get("uuid") for h in snapshot.hosts.values()
                  if h.get("uuid"))


def p50(hops):
    times = [h["seconds"] for h in hops]
    return statistics.median(times) if times else None


def applies(record, members):
    """True when ``record`` speaks for the pool whose member uuids are
    ``members`` (NOTE(stale))."""
    return bool(record) and sorted(record.get("members") or []) == \
        sorted(members)


def needs_proof(record, members):
    """True when the daemon should prove the pool (again).

    NOTE(once): a current proof is never redone on its own, proven or not:
    a permanent failure (VM_REQUIRES_SR, HOST_NOT_ENOUGH_FREE_MEMORY) would
    fail again at every resync and create a VM each time. The way out after
    a fix is ``poolmgr-manage pool prove``; a failure whose code describes
    a moment (a host restarting, another operation in flight) is retried.
    """
    if not applies(record, members):
        return True
    failure = record.get("failure") or {}
    return record.get("status") == FAILED and bool(failure.get("transient"))


def judge(record, members, ready, reasons):
    """(ready, reasons) once the proof is taken into account.

    NOTE(truth): a current failed proof makes the pool NOT ready whatever
    the SR matrix says: xapi refused a live migration between two of its
    members, and reporting it ready would not be true.
    """
    if not applies(record, members) or record.get("status") != FAILED:
        return ready, reasons
    return False, list(reasons) + ["live migration proof " + summary(record)]


def summary(record, members=None):
    """The readiness field's words: ``proven at T (n hops, p50 X s)``, or
    the failing hop with xapi's code; ``members`` (when given) marks a
    proof of other members as stale."""
    if not record:
        return None
    text = _summary(record)
    if members is not None and not applies(record, members):
        text += " [stale: the pool's members changed since]"
    return text


def _summary(record):
    at = record.get("at") or "?"
    if record.get("status") == SINGLE:
        return "not proven at %s: the pool has one member, no host to " \
               "migrate to" % at
    hops = record.get("hops") or []
    if record.get("status") == PROVEN:
        return "proven at %s (%d hop%s, p50 %.2f s)" % (
            at, len(hops), "" if len(hops) == 1 else "s", p50(hops) or 0.0)
    failure = record.get("failure") or {}
    where = ""
    if failure.get("step") == "migrate":
        where = " %s -> %s:" % (failure.get("from"), failure.get("to"))
    elif failure.get("step") == "start":
        where = " starting the canary on %s:" % failure.get("to")
    code = failure.get("code")
    detail = " ".join([code] + list(failure.get("params") or [])) if code \
        else failure.get("message") or "unknown error"
    text = "failed at %s after %d hop%s:%s %s" % (
        at, len(hops), "" if len(hops) == 1 else "s", where, detail)
    if code and failure.get("message"):
        text += " (%s)" % failure["message"]
    if record.get("leftover"):
        text += "; %s" % record["leftover"]
    return text
