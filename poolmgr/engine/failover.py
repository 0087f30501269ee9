"""A dead master: detect it, say so, promote a member only when it is safe.

Called by a pass (engine.passes) after observation. A pool whose master
does not answer (refused, timed out) while its members answer, members
reached with ``session.slave_local_login_with_password``, is said to be
in that state at once (still ``changing``) and is ``master_lost`` once it
lasted ``[xenserver] master_dead_after``; what was seen is the failover
record in ``pools.failover`` (poolmgr.plan.failover, which also
decides and words it). The waits are due times: no thread waits for the
threshold.

A promotion is two journalled steps on the successor, each fenced by the
lease: ``pool.emergency_transition_to_master`` (slave-local session),
then, once the successor answers as master (the wait_master wait of
engine.waits), ``pool.recover_slaves``; then every member is asked who
its master is (a normal login answers ``HOST_IS_SLAVE [address]``) and
the ones that do not name the new master are listed. The old master's
member row is then ``fenced``.

NOTE(once): emergency_transition_to_master is called only while no host
answers as the pool's master. After it took effect the successor answers
as master, so a pass resumed after a crash anywhere after the call goes
on with recover_slaves (idempotent in xapi) and never calls it again.
"""

import datetime

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import fencing
from poolmgr.engine import journal
from poolmgr.engine import status
from poolmgr.engine import waits
from poolmgr.plan import planner
from poolmgr.plan import failover as policy
from poolmgr.xenapi import errors
from poolmgr.xenapi import records

LOG = logging.getLogger(__name__)

TRANSITION = planner.EMERGENCY_TRANSITION
RECOVER = planner.RECOVER_SLAVES
# Seconds one probe of a member may take (a slave-local login, a login).
PROBE_TIMEOUT = 5.0


def _iso(when):
    return when.isoformat()


def _parse(text):
    return datetime.datetime.fromisoformat(text) if text else None


def _probe_timeout(ctx):
    return min(PROBE_TIMEOUT, ctx.conf.xenserver.call_timeout)


def consider(ctx, desired, pool_row, members, observed):
    """A status.PassResult when the lost master decided the pass, else
    None (the pass plans as usual). May raise waits.Waiting."""
    record = pool_row.get("failover") or {}
    if observed.pool is not None:
        return _master_answers(ctx, desired, pool_row, members, observed,
                               record)
    lost = _lost_master(pool_row, observed)
    if lost is None:
        return None
    old, followers = lost
    host = ctx.inventory.get(old) or {}
    now = context.now()
    if record.get("master") != old or record.get("promoted_at"):
        record = {"master": old,
                  "address": records.url_host(host.get("xapi_url")),
                  "uuid": host.get("xenserver_uuid"), "since": _iso(now),
                  "resident_vms": _last_seen_resident(ctx, host)}
    else:
        record = dict(record)
    answering, silent = _probe_members(ctx, desired, old, followers)
    if not answering:
        return None
    view = observed.hosts[old]
    record.update(answering=answering, silent=silent,
                  error=view.code or "unreachable")
    elapsed = (now - _parse(record["since"])).total_seconds()
    threshold = ctx.conf.xenserver.master_dead_after
    request = pool_row.get("promote_request")
    decision = policy.decide(record, request,
                             ctx.conf.xenserver.master_failover,
                             bool(pool_row.get("ha_enabled")), elapsed,
                             threshold)
    if decision == policy.GRACE:
        # NOTE(grace-looks): the master may answer again at any moment (a
        # slow or restarting xapi); the pool is looked at again on its
        # backoff, as for any transient error, and at the threshold at the
        # latest, so a master that comes back is seen at once.
        attempts = status.count_pool_attempt(ctx)
        return _end(ctx, record, db_api.POOL_CHANGING,
                    [policy.not_answering_reason(record, elapsed,
                                                 threshold)],
                    due_in=min(threshold - elapsed,
                               context.backoff(ctx.conf, attempts)))
    if decision == policy.FENCE:
        outcome = fencing.run(ctx.conf.xenserver.fence_command, old,
                              record.get("address"), record.get("uuid"),
                              _fence_timeout(ctx))
        ctx.fence()
        record["fence"] = outcome.as_record(_fence_timeout(ctx))
        if outcome.fenced:
            decision = policy.PROMOTE
    if decision == policy.PROMOTE:
        return _promote(ctx, desired, pool_row, record, request)
    return _lost(ctx, desired, record, decision)


def _fence_timeout(ctx):
    # NOTE(lease): the pass holds the pool's lease while the command runs;
    # it may use at most half of it, so the lease is renewed in time.
    return min(ctx.conf.xenserver.fence_timeout,
               ctx.conf.reconciler.lease_time / 2.0)


# NOTE(not-answering): a master is lost only when it does not answer: the
# connection refused or timed out. One that answers with the wrong
# certificate (TLS_PIN_MISMATCH), refuses our credentials or speaks
# something else is a configuration to fix, not a dead host; it keeps the
# planner's own error and its way out.
_NOT_ANSWERING = frozenset(["CONNECTION_FAILED", "TIMEOUT", None])


def _lost_master(pool_row, observed):
    """(lost master, [members naming it]) or None."""
    old = pool_row.get("master")
    view = observed.hosts.get(old) if old else None
    if view is None or view.status != planner.UNREACHABLE or \
            view.code not in _NOT_ANSWERING:
        return None
    followers = [n for n, v in observed.hosts.items()
                 if v.status == planner.MASTER_UNREACHABLE]
    return (old, followers) if followers else None


def _probe_members(ctx, desired, old, followers):
    """([members answering a slave-local login], [those that do not])."""
    answering, silent = [], []
    names = [h for h in dict.fromkeys(list(desired.hosts) + followers)
             if h != old]
    for name in names:
        host = ctx.inventory.get(name)
        if host is None:
            continue
        probe = ctx.sessions.fresh(host["xapi_url"], local=True,
                                   timeout=_probe_timeout(ctx))
        try:
            probe.call("host.is_in_emergency_mode")
        except errors.XapiError as exc:
            LOG.debug("Pool %s: %s does not answer a slave-local login: %s",
                      ctx.aggregate_id, name, exc)
            silent.append(name)
            continue
        finally:
            probe.logout()
        answering.append(name)
    return answering, silent


def _last_seen_resident(ctx, host):
    """Names of the guest VMs resident on ``host`` as the pool's feed last
    saw them; None when this engine has not seen the pool."""
    snap = ctx.feeds.get(ctx.aggregate_id).last_snapshot() \
        if ctx.feeds is not None else None
    if snap is None:
        return None
    ref = snap.host_ref_by_uuid(host.get("xenserver_uuid"))
    return sorted(vm.get("name_label", "?")
                  for vm in snap.resident_vms(ref)) if ref else None


def _end(ctx, record, state, reasons, due_in, extra=None):
    fields = {"failover": record, "state": state, "reasons": reasons,
              "live_migration_ready": False,
              "last_reconciled_at": context.now()}
    fields.update(extra or {})
    # NOTE(release-write): written by the UPDATE that releases the lease,
    # fenced like it: a pass that lost its lease writes nothing.
    ctx.release_fields.update(fields)
    LOG.info("Pool %s: %s: %s", ctx.aggregate_id, state, reasons[0])
    return status.PassResult(ctx.aggregate_id, False, state=state,
                             steps=ctx.steps_executed, reasons=reasons,
                             due_in=max(0.0, due_in))


def _lost(ctx, desired, record, decision, extra=None):
    reasons = policy.lost_reasons(record, desired.aggregate_id, decision)
    attempts = status.count_pool_attempt(ctx)
    return _end(ctx, record, db_api.POOL_MASTER_LOST, reasons,
                context.backoff(ctx.conf, attempts), extra=extra)


def _promote(ctx, desired, pool_row, record, request):
    """Step 1: pool.emergency_transition_to_master on the successor."""
    requested = (request or {}).get("host")
    if record.get("transition_at") and not _transition_undone(ctx, record):
        record["refused"] = (
            "pool.emergency_transition_to_master was called on %s at %s; %s "
            "does not answer as master: poolmgr does not call it again (pool "
            "promote asks again)" % (record.get("successor"),
                                     record.get("transition_at"),
                                     record.get("successor")))
        if request:
            record.pop("transition_at", None)
        return _lost(ctx, desired, record, policy.PROMOTE)
    name = policy.successor(desired.hosts, record.get("answering") or (),
                            record["master"], requested)
    if name is None:
        record["refused"] = "no promotion: %s" % (
            "the requested successor %s does not answer" % requested
            if requested else "no member answers")
        return _lost(ctx, desired, record, policy.PROMOTE,
                     extra={"promote_request": None})
    host = ctx.inventory[name]
    authority = ("poolmgr-manage pool promote --confirm-master-fenced at %s"
                 % request.get("at") if request else
                 (record.get("fence") or {}).get("outcome"))
    record.update(successor=name, successor_uuid=host.get("xenserver_uuid"),
                  successor_address=records.url_host(host["xapi_url"]),
                  transition_at=_iso(context.now()), authority=authority)
    record.pop("refused", None)
    # NOTE(before): the record names the successor before the call, so a
    # pass resumed after a crash knows whom the call was made on.
    db_api.update_pool(ctx.aggregate_id, failover=record,
                       promote_request=None)
    step = planner.Step(TRANSITION, name, params={
        "master": name, "old_master": record["master"]})
    local = ctx.sessions.fresh(host["xapi_url"], local=True)
    try:
        journal.mutate(ctx, TRANSITION, step, lambda: local.call(
            "pool.emergency_transition_to_master"))
    except errors.XapiError as exc:
        record.pop("transition_at", None)
        if exc.code != "HA_IS_ENABLED":
            db_api.update_pool(ctx.aggregate_id, failover=record)
            raise
        record["refused"] = ("pool.emergency_transition_to_master on %s "
                             "refused: HA_IS_ENABLED" % name)
        return _lost(ctx, desired, record, policy.LEAVE_TO_HA,
                     extra={"ha_enabled": True})
    finally:
        local.logout()
    LOG.warning("Pool %s: %s promoted in place of lost master %s (%s)",
                ctx.aggregate_id, name, record["master"], authority)
    _forget_redirects(ctx, desired)
    raise waits.Waiting(waits.WAIT_MASTER, name, host.get("xenserver_uuid"))


def _forget_redirects(ctx, desired):
    """NOTE(redirect): a cached session that followed HOST_IS_SLAVE went
    on talking to the lost master's address; after a promotion the
    members are asked afresh, and name the new master."""
    for name in desired.hosts:
        url = (ctx.inventory.get(name) or {}).get("xapi_url")
        if url:
            ctx.sessions.drop(url, follow_master=True)


def _transition_undone(ctx, record):
    """True when the successor still names the lost master (the call did
    not take effect: safe to make again)."""
    url = (ctx.inventory.get(record.get("successor")) or {}).get("xapi_url")
    if url is None:
        return False
    said = _who_is_master(ctx, url)
    return said == ("slave", record.get("address"))


def _who_is_master(ctx, url):
    """("slave", master address) | ("master", None) | ("silent", why)."""
    probe = ctx.sessions.fresh(url, follow_master=False,
                               timeout=_probe_timeout(ctx))
    try:
        probe.login()
    except errors.XapiError as exc:
        if exc.code == "HOST_IS_SLAVE" and exc.params:
            return "slave", str(exc.params[0])
        return "silent", "%s %s" % (exc.code, exc)
    probe.logout()
    return "master", None


def _master_answers(ctx, desired, pool_row, members, observed, record):
    """The pool is read on a master: end or finish a failover."""
    if not record:
        if pool_row.get("promote_request"):
            db_api.update_pool(ctx.aggregate_id, promote_request=None)
            # The row the pass read stays true (NOTE(settled-rows)).
            pool_row["promote_request"] = None
        return None
    if not record.get("successor"):
        # The master answers again before any promotion: nothing happened.
        LOG.info("Pool %s: master %s answers again", ctx.aggregate_id,
                 observed.master)
        db_api.update_pool(ctx.aggregate_id, failover=None,
                           promote_request=None)
        pool_row.update(failover=None, promote_request=None)
        return None
    if observed.master != record["successor"]:
        return None
    if not record.get("promoted_at"):
        return _recover(ctx, observed, record)
    _review(ctx, members, observed, record)
    return None


def _recover(ctx, observed, record):
    """Step 2: pool.recover_slaves on the new master, then verify."""
    name = record["successor"]
    step = planner.Step(RECOVER, name, params={"master": name})
    refs = journal.mutate(ctx, RECOVER, step, lambda: ctx.master_session.call(
        "pool.recover_slaves")) or []
    names = observed.names_by_ref()
    record["recovered"] = sorted(names.get(r, r) for r in refs)
    old_view = observed.hosts.get(record["master"])
    if old_view is not None and old_view.ref:
        # The new master's view of the old one's VMs (they stay running).
        record["resident_vms"] = sorted(
            vm.get("name_label", "?")
            for vm in observed.pool.resident_vms(old_view.ref))
    record["promoted_at"] = _iso(context.now())
    record.pop("refused", None)
    _verify(ctx, observed, record)
    db_api.upsert_member(ctx.aggregate_id, record["master"],
                         state=db_api.MEMBER_FENCED, error_code=None,
                         error_params=None)
    db_api.update_pool(ctx.aggregate_id, failover=record,
                       promote_request=None)
    LOG.warning("Pool %s: %s is master; recovered %s; not naming it: %s",
                ctx.aggregate_id, name, ", ".join(record["recovered"])
                or "none", ", ".join(record["stragglers"]) or "none")
    return status.PassResult(ctx.aggregate_id, False,
                             steps=ctx.steps_executed,
                             pending="act", due_in=0.0)


def _verify(ctx, observed, record, only=None):
    """Who names the new master now (NOTE(silent): recover_slaves skips
    the members it cannot reach without a word)."""
    verified, stragglers = [], {}
    for name, view in observed.hosts.items():
        if name in (record["master"], record["successor"]) or \
                view.status != planner.IN_POOL or \
                (only is not None and name not in only):
            continue
        kind, said = _who_is_master(ctx, view.url)
        if kind == "slave" and said == record.get("successor_address"):
            verified.append(name)
        elif kind == "slave":
            stragglers[name] = "it names master %s" % said
        elif kind == "master":
            stragglers[name] = "it answers as a master itself"
        else:
            stragglers[name] = "it does not answer: %s" % said
    if only is None:
        record["verified"] = sorted(verified)
    else:
        record["verified"] = sorted(set(record.get("verified") or ())
                                    | set(verified))
    record["stragglers"] = stragglers
    return verified


def _review(ctx, members, observed, record):
    """After the promotion: stragglers asked again, the old master looked
    at (not trusted: never a master candidate, see planner NOTE(fenced))."""
    before = dict(record)
    if record.get("stragglers"):
        _verify(ctx, observed, record, only=set(record["stragglers"]))
    if (members.get(record["master"]) or {}).get("state") == \
            db_api.MEMBER_FENCED:
        url = (ctx.inventory.get(record["master"]) or {}).get("xapi_url")
        kind, said = _who_is_master(ctx, url) if url else ("silent", "")
        record["revived"] = (
            "it answers again as master of its stale copy of the pool" if
            kind == "master" else "it answers again, naming master %s" % said
            if kind == "slave" else None)
    if record != before:
        db_api.update_pool(ctx.aggregate_id, failover=record)
