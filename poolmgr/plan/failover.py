"""A lost master, decided and said: pure, plain data in and out.

The engine (poolmgr.engine.failover) gathers the facts into a *failover
record* (``pools.failover``, a dict)::

    {"master": compute host, "address": ..., "uuid": ...,
     "since": ISO time the master stopped answering, "error": its code,
     "answering": [members reached with a slave-local login],
     "silent": [members that did not answer either],
     "resident_vms": [names] or None (not seen),
     "fence": {"fenced", "exit_code", "timed_out", "output", "outcome"},
     "successor": compute host, "transition_at": ISO,
     "authority": what allowed the promotion,
     "promoted_at": ISO, "recovered": [...], "verified": [...],
     "stragglers": {host: what it answered}, "revived": text or None}

and asks this module what to do and what to tell the operator. What
poolmgr never does on its own (ARCHITECTURE.md "Operations"): reset a VM's
power state, promote without a fence or a person's confirmation, promote
when xapi HA is on.
"""

from poolmgr.plan.steps import BLOCKED, MEMBER_FENCED, Step

MANUAL = "manual"
FENCED = "fenced"

# What to do about a master that does not answer.
GRACE = "grace"          # not master_lost yet: look again at the threshold
LEAVE_TO_HA = "ha"       # xapi HA elects the master
ASK = "ask"              # manual: wait for poolmgr-manage pool promote
FENCE = "fence"          # fenced: run fence_command first
PROMOTE = "promote"


def decide(record, request, policy, ha_enabled, elapsed, threshold):
    """One of GRACE, LEAVE_TO_HA, ASK, FENCE, PROMOTE."""
    if elapsed < threshold:
        return GRACE
    if ha_enabled:
        return LEAVE_TO_HA
    if request:
        return PROMOTE
    if policy == FENCED:
        fenced = (record.get("fence") or {}).get("fenced")
        return PROMOTE if fenced else FENCE
    return ASK


def successor(desired_hosts, answering, lost, requested=None):
    """The member to promote: ``requested`` if it answers, else the
    aggregate's first host (in aggregate order) that answers; or None."""
    if requested:
        return requested if requested in answering else None
    return next((h for h in desired_hosts
                 if h in answering and h != lost), None)


def _master(record):
    return "%s (%s, uuid %s)" % (record.get("master"), record.get("address"),
                                 record.get("uuid") or "?")


def _since(record):
    return "since %s (unreachable: %s)" % (record.get("since"),
                                           record.get("error") or "?")


def _answering(record):
    text = "members answering (slave-local login): %s" % (
        ", ".join(record.get("answering") or ()) or "none")
    if record.get("silent"):
        text += "; not answering: %s" % ", ".join(record["silent"])
    return text


def not_answering_reason(record, elapsed, threshold):
    """The pool's reason before master_dead_after has passed."""
    return ("pool master %s does not answer %s, %.0f s; %s; the pool is "
            "master_lost if it still does not answer after [xenserver] "
            "master_dead_after = %.0f s" % (
                _master(record), _since(record), elapsed,
                _answering(record), threshold))


def resident_vms_reason(record):
    vms = record.get("resident_vms")
    name = record.get("master")
    if vms is None:
        listed = "not known (not seen since poolmgr started)"
    else:
        listed = ", ".join(vms) or "none"
    return ("VMs resident on %s (xapi still shows them running): %s; "
            "poolmgr never resets their power state (once %s is powered "
            "off: xe vm-reset-powerstate)" % (name, listed, name))


def lost_reasons(record, aggregate, decision, fence_timeout=None):
    """The reasons of a master_lost pool."""
    reasons = ["pool master %s does not answer %s; %s" % (
        _master(record), _since(record), _answering(record)),
        resident_vms_reason(record)]
    fence = record.get("fence") or {}
    if decision == LEAVE_TO_HA:
        reasons.append("xapi HA is enabled on this pool (HA_IS_ENABLED): HA "
                       "elects the new master; poolmgr does not promote")
    elif decision == ASK:
        reasons.append(
            "[xenserver] master_failover = manual: once %s is powered off, "
            "poolmgr-manage pool promote %s [--host HOST] "
            "--confirm-master-fenced" % (record.get("master"), aggregate))
    elif decision == FENCE and fence:
        reasons.append("%s; no promotion (fence_command runs again at the "
                       "next look)" % fence.get("outcome"))
    if record.get("refused"):
        reasons.append(record["refused"])
    return reasons


def readmit_hint(record, aggregate):
    return ("to re-admit it, make it leave its stale pool (on %s: xe "
            "host-forget uuid=%s, then reinstall %s or on it xe "
            "pool-emergency-reset-master master-address=%s), then "
            "poolmgr-manage pool retry %s %s" % (
                record.get("successor"), record.get("uuid") or "?",
                record.get("master"), record.get("successor_address") or "?",
                aggregate, record.get("master")))


def fenced_steps(record, members, aggregate):
    """BLOCKED steps after a promotion: the fenced old master, and the
    members that do not name the new master."""
    record = record or {}
    if not record.get("promoted_at"):
        return []
    steps = []
    old = record.get("master")
    if (members.get(old) or {}).get("state") == MEMBER_FENCED:
        said = ("%s was master until %s was promoted at %s (%s); it is "
                "fenced: not trusted as master, not joined back by poolmgr"
                % (old, record.get("successor"), record.get("promoted_at"),
                   record.get("authority")))
        if record.get("revived"):
            said += "; %s" % record["revived"]
        steps.append(Step(BLOCKED, old, reason="%s; %s" % (
            said, readmit_hint(record, aggregate))))
    for host, what in sorted((record.get("stragglers") or {}).items()):
        steps.append(Step(BLOCKED, host, reason=(
            "%s does not name the new master %s after pool.recover_slaves "
            "(%s); on it: xe pool-emergency-reset-master master-address=%s"
            % (host, record.get("successor"), what,
               record.get("successor_address") or "?"))))
    return steps
