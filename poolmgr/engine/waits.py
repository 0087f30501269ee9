"""Waits as due times: what a pool waits for, recorded, and one look at it.

After pool.join, pool.eject or pool.designate_new_master the pass ends and
``pools.waiting`` says what the pool waits for::

    {"kind": "wait_member" | "wait_standalone" | "wait_master",
     "host": compute host, "uuid": its XenServer uuid,
     "since": ISO time, "deadline": ISO time, "live_since": ISO time}

The pool is due again when there is something to see; the next pass takes
one look (``look``): on the master, an event.from long-poll of at most
``[reconciler] wait_long_poll`` seconds returns as soon as the master
changes. Then the pass proceeds, or ends again until the next look. A wait
that passes its deadline ends the way a timed-out loop used to: the host
is blocked with the reason and backs off.
"""

import datetime
import time

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.plan import planner
from poolmgr.plan import readiness
from poolmgr.xenapi import errors
from poolmgr.xenapi import operations

LOG = logging.getLogger(__name__)

WAIT_MEMBER = planner.WAIT_MEMBER
WAIT_STANDALONE = planner.WAIT_STANDALONE
WAIT_MASTER = "wait_master"
# Seconds a live member gets for its shared-SR PBDs to plug by themselves
# (xapi plugs them at slave start-up) before poolmgr repairs them.
PBD_SETTLE_TIME = 3.0
DONE = "done"


class Waiting(Exception):
    """Raised by a step: the pass ends; the pool waits for ``kind``."""

    def __init__(self, kind, host, uuid=None):
        self.kind = kind
        self.host = host
        self.uuid = uuid
        super().__init__("%s %s" % (kind, host))


def _iso(when):
    return when.isoformat()


def _parse(text):
    return datetime.datetime.fromisoformat(text) if text else None


def timeout_of(conf, kind):
    if kind == WAIT_STANDALONE:
        return conf.xenserver.eject_timeout
    return conf.xenserver.join_timeout


def record(ctx, waiting, previous):
    """Write the wait into pools.waiting (keeping the deadline of the same
    wait recorded by an earlier pass); return the record."""
    now = context.now()
    same = previous and (previous.get("kind"), previous.get("host")) == (
        waiting.kind, waiting.host)
    if same:
        entry = dict(previous)
    else:
        deadline = now + datetime.timedelta(
            seconds=timeout_of(ctx.conf, waiting.kind))
        entry = {"kind": waiting.kind, "host": waiting.host,
                 "uuid": waiting.uuid, "since": _iso(now),
                 "deadline": _iso(deadline),
                 "url": _where(ctx, waiting)}
    if entry != previous:
        # NOTE(true-now): the reasons of the pass before the step are
        # stale; the pool now waits, and says for what.
        # NOTE(release-write): the pass ends here, so the wait is written
        # by the UPDATE that releases the lease (one statement, not two;
        # fenced like it: a pass that lost its lease records no wait, and
        # the next holder finds the wait again by observing).
        ctx.release_fields.update(waiting=entry, reasons=[reason_of(entry)])
    LOG.debug("Pool %s: waits (%s %s)", ctx.aggregate_id, entry["kind"],
              entry["host"])
    return entry


_WAITS_FOR = {WAIT_STANDALONE: "waiting for %s to come back standalone",
              WAIT_MASTER: "waiting for %s to become master",
              WAIT_MEMBER: "waiting for %s to be live and enabled on the "
              "master"}


def reason_of(entry, exc=None):
    """The pool's reason while it waits, with what the last look met."""
    text = _WAITS_FOR.get(entry.get("kind"), "waiting for %s") % (
        entry.get("host"),)
    if exc is not None:
        text += ": %s %s" % (exc.code, exc)
    return text


def _problem(ctx, entry, exc):
    """A look that failed: said once, on the member and in the reasons.

    The looks go on (every wait_poll_interval until the deadline); only a
    change of what they meet is written and logged again.
    """
    seen = [exc.code, [str(p) for p in exc.params or ()]]
    if entry.get("problem") == seen:
        return
    entry["problem"] = seen
    # NOTE(transient): a host restarting after its eject refuses
    # connections for a while; that is expected, a pin mismatch is not.
    LOG.log(logging.INFO if exc.transient else logging.WARNING,
            "Pool %s: %s", ctx.aggregate_id, reason_of(entry, exc))
    db_api.update_pool(ctx.aggregate_id, waiting=entry,
                       reasons=[reason_of(entry, exc)])
    if entry.get("host"):
        db_api.upsert_member(ctx.aggregate_id, entry["host"],
                             error_code=exc.code[:255],
                             error_params=seen[1])
        ctx.members_written = True


def _no_problem(ctx, entry):
    """A look that succeeded after failed ones: the problem is over."""
    if entry.pop("problem", None) is None:
        return
    LOG.info("Pool %s: %s: the host answers again", ctx.aggregate_id,
             reason_of(entry))
    db_api.update_pool(ctx.aggregate_id, waiting=entry,
                       reasons=[reason_of(entry)])
    if entry.get("host"):
        db_api.upsert_member(ctx.aggregate_id, entry["host"],
                             error_code=None, error_params=None)
        ctx.members_written = True


def _where(ctx, waiting):
    """The xapi URL a look reads: the master's, or the host's own."""
    if waiting.kind == WAIT_MEMBER:
        return ctx.master_url
    host = (ctx.inventory or {}).get(waiting.host)
    return host["xapi_url"] if host else None


def clear(ctx):
    """The wait is over: written by the lease's release (NOTE(release-write)),
    unless the pass records another wait first (record)."""
    ctx.release_fields["waiting"] = None


def _timed_out(entry):
    deadline = _parse(entry.get("deadline"))
    return deadline is not None and context.now() >= deadline


def _timeout_reason(conf, entry):
    host, kind = entry.get("host"), entry.get("kind")
    if kind == WAIT_STANDALONE:
        return "%s did not come back standalone %.0f s after eject" % (
            host, conf.xenserver.eject_timeout)
    if kind == WAIT_MASTER:
        return "%s did not become master" % host
    return "%s not live and enabled on the master %.0f s after joining" % (
        host, conf.xenserver.join_timeout)


def look(ctx, pool_row, entry):
    """One look at the wait: DONE, or seconds until the next look.

    Raises context.WaitTimeout past the deadline.
    """
    kind = entry.get("kind")
    looker = {WAIT_MEMBER: _look_member, WAIT_STANDALONE: _look_standalone,
              WAIT_MASTER: _look_master}.get(kind)
    if looker is None:
        return DONE
    try:
        outcome = looker(ctx, pool_row, entry)
    except errors.XapiError as exc:
        if not exc.transient:
            # NOTE(permanent): the full pass that follows observes the pool
            # and reports what it finds; waiting would only hide it.
            LOG.info("Pool %s: %s while waiting: %s", ctx.aggregate_id,
                     exc.code, exc)
            return DONE
        _problem(ctx, entry, exc)
        outcome = ctx.conf.reconciler.wait_poll_interval
    if outcome == DONE:
        return DONE
    if _timed_out(entry):
        raise context.WaitTimeout(entry.get("host"),
                                  _timeout_reason(ctx.conf, entry))
    return outcome


def _url(ctx, name, entry):
    if entry.get("url"):
        return entry["url"]
    host = db_api.get_host(name) if name else None
    return host["xapi_url"] if host else None


def first_look_in(conf, waiting, since=None):
    """Seconds from now to the first look at the wait.

    ``wait_poll_interval`` after the step: ``since`` is when its xapi call
    returned (time.monotonic()), None for now. NOTE(fair): a first look due
    at once was claimed by the engine that released the pool (it wakes its
    own loop), so of two daemons on one database one took every pool.
    NOTE(since): counted from the call, not from the end of the pass: the
    pass's journal and wait writes after the call took 10 to 150 ms in a
    10 x 16 build-out, each pass's look came that much after the change it
    waited for (measured: the pool built last of ten spent 2.6 s of its 18.7
    between a member being complete and its next join).
    """
    interval = conf.reconciler.wait_poll_interval
    if since is None:
        return interval
    return max(0.0, interval - (time.monotonic() - since))


def _look_member(ctx, pool_row, entry):
    url = _url(ctx, pool_row.get("master"), entry)
    if url is None:
        return DONE
    session = ctx.sessions.get(url, follow_master=True)
    begun = time.monotonic()
    with ctx.long_poll() as budget:
        end = begun + budget
        while True:
            # NOTE(long-poll): each read blocks until the master changes
            # (or the budget is spent), so the look ends as soon as the
            # member is complete, not at the next due time.
            snap = ctx.read_master(session, timeout=max(
                0.0, end - time.monotonic()))
            _no_problem(ctx, entry)
            ref = snap.host_ref_by_uuid(entry.get("uuid"))
            if ref is not None and readiness.member_complete(snap, ref):
                ctx.fresh_read = (session, snap)
                return DONE
            live = ref is not None and snap.host_live(ref) and \
                snap.host_enabled(ref)
            # A live member whose PBDs are still plugging is waited on too:
            # xapi plugs them in the seconds after the slave starts.
            if time.monotonic() >= end:
                break
    # NOTE(cadence): one look per wait_poll_interval; a look that
    # long-polled has spent (part of) it waiting on the master already.
    next_look = max(0.0, ctx.conf.reconciler.wait_poll_interval
                    - (time.monotonic() - begun))
    if not live:
        return next_look
    now = context.now()
    live_since = _parse(entry.get("live_since"))
    if live_since is None:
        live_since = now
        entry["live_since"] = _iso(now)
        db_api.update_pool(ctx.aggregate_id, waiting=entry)
    left = PBD_SETTLE_TIME - (now - live_since).total_seconds()
    if left <= 0:
        return DONE
    return min(left, next_look)


def _look_standalone(ctx, pool_row, entry):
    url = _url(ctx, entry.get("host"), entry)
    if url is None:
        return DONE
    probe = ctx.sessions.fresh(url, follow_master=False, timeout=min(
        5.0, ctx.conf.xenserver.call_timeout))
    try:
        snap = operations.read_pool(probe)
    except errors.XapiError as exc:
        # NOTE(rebooting): an ejected host is away while it restarts, so
        # the look goes on; what it meets is recorded (a pin mismatch
        # does not end with the restart).
        _problem(ctx, entry, exc)
        return ctx.conf.reconciler.wait_poll_interval
    finally:
        probe.logout()
    _no_problem(ctx, entry)
    if len(snap.hosts) == 1:
        return DONE
    return ctx.conf.reconciler.wait_poll_interval


def _look_master(ctx, pool_row, entry):
    url = _url(ctx, entry.get("host"), entry)
    if url is None:
        return DONE
    follower = ctx.sessions.get(url, follow_master=True)
    snap = operations.read_pool(follower)
    _no_problem(ctx, entry)
    if snap.master_uuid != entry.get("uuid"):
        return ctx.conf.reconciler.wait_poll_interval
    db_api.update_pool(ctx.aggregate_id, master=entry.get("host"))
    pool_row["master"] = entry.get("host")
    return DONE
