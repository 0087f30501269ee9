"""The pool engine: lease a pool, observe, plan, execute one step, repeat.

Level-triggered: each iteration reads desired state (MySQL) and observed
state (xapi, one call per pool when converged), asks the pure planner what
to do, and executes the plan up to and including its first xapi mutation;
then it observes again. A crash anywhere is resumed by observing again, so a
step that took effect is never repeated (xapi lists a joined host on the
master as soon as pool.join returns).

Every xapi mutation is journaled before and after (``operations`` table,
cause = the notification's message_id), and preceded by a fencing check: the
pool's lease must still be ours at the generation we acquired, so two
engines on one database never mutate the same pool.
"""

import argparse
import concurrent.futures
import dataclasses
import datetime
import os
import signal
import socket
import sys
import threading
import time
import uuid

from oslo_log import log as logging
from oslo_utils import timeutils
import tenacity

from poolmgr.db import api as db_api
from poolmgr import events
from poolmgr import planner
from poolmgr import readiness
from poolmgr.xenapi import errors
from poolmgr.xenapi import operations
from poolmgr.xenapi import records
from poolmgr.xenapi import session as xsession

LOG = logging.getLogger(__name__)

# NOTE(poll): the master is read with one call, so polling it every quarter
# second while a member joins costs little and keeps build-out close to the
# join latency itself.
MEMBER_POLL_INTERVAL = 0.25
# Seconds a live member gets for its shared-SR PBDs to plug by themselves
# (xapi plugs them at slave start-up) before poolmgr repairs them.
PBD_SETTLE_TIME = 3.0
# Steps that only write our own tables: the plan made from the same
# observation stays valid after them. After anything else, observe again.
_CONTINUE_AFTER = frozenset([planner.PREFLIGHT, planner.BLOCKED,
                             planner.MARK_ACTIVE, planner.MARK_REMOVED,
                             planner.REFUSE_EJECT, planner.DISMISS])
# A plan loop that keeps finding work is cut after this many iterations.
MAX_ITERATIONS = 200


class LeaseLost(Exception):
    """The pool's lease is no longer ours: stop before touching xapi."""


class Stopping(Exception):
    """The engine was asked to stop between steps."""


class _WaitTimeout(Exception):
    def __init__(self, host, reason):
        self.host = host
        super().__init__(reason)


@dataclasses.dataclass
class PassResult:
    aggregate_id: int
    converged: bool
    state: str = None
    steps: int = 0
    reasons: list = dataclasses.field(default_factory=list)
    error: str = None


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


@dataclasses.dataclass
class _Pass:
    aggregate_id: int
    generation: int
    progress: object = None
    cause: str = None
    master_session: object = None
    inventory: dict = dataclasses.field(default_factory=dict)
    steps_executed: int = 0
    last_renew: float = 0.0
    pool_error: tuple = None


def _now():
    return timeutils.utcnow()


def _desired(agg):
    if agg is None:
        return None
    managed = (not agg["deleted"]) and events.POOL_FLAG in (agg["metadata"]
                                                             or {})
    return planner.Desired(aggregate_id=agg["id"], name=agg["name"] or "",
                           hosts=tuple(agg["hosts"] or ()), managed=managed)


class Reconciler:
    """Reconciles pools: ``run_forever`` in the daemon, one pool on demand."""

    def __init__(self, conf, owner=None):
        self.conf = conf
        self.owner = owner or "%s:%d:%s" % (socket.gethostname(), os.getpid(),
                                            uuid.uuid4().hex[:6])
        self.sessions = xsession.SessionCache(conf)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = {}

    # -- lifecycle ----------------------------------------------------------

    def wake(self):
        """Look for due pools now rather than at the next poll."""
        self._wake.set()

    def stop(self):
        """Stop claiming; passes finish the step in flight and release."""
        self._stopping.set()
        self._wake.set()

    def run_forever(self, stop_event=None):
        stop_event = stop_event or threading.Event()
        threads = self.conf.reconciler.threads
        LOG.info("Reconciler %s running with %d threads", self.owner, threads)
        with concurrent.futures.ThreadPoolExecutor(
                threads, thread_name_prefix="poolmgr-pool") as executor:
            while not (stop_event.is_set() or self._stopping.is_set()):
                try:
                    self._claim(executor, threads)
                except Exception:  # noqa: BLE001 - the DB may be restarting
                    LOG.exception("Could not look for due pools")
                self._wake.wait(self._idle_time())
                self._wake.clear()
            self._stopping.set()
        self.sessions.close()
        LOG.info("Reconciler %s stopped", self.owner)

    def _idle_time(self):
        interval = self.conf.reconciler.poll_interval
        try:
            due = db_api.next_due_time()
        except Exception:  # noqa: BLE001
            return interval
        if due is None:
            return interval
        return max(0.0, min(interval, (due - _now()).total_seconds()))

    def _claim(self, executor, threads):
        with self._lock:
            free = threads - len(self._in_flight)
            busy = set(self._in_flight)
        if free <= 0:
            return
        for aggregate_id in db_api.list_due_pools(limit=free + len(busy)):
            if aggregate_id in busy or self._stopping.is_set():
                continue
            generation = db_api.acquire_lease(
                aggregate_id, self.owner, self.conf.reconciler.lease_time)
            if generation is None:
                continue
            with self._lock:
                self._in_flight[aggregate_id] = generation
            future = executor.submit(self._leased_pass, aggregate_id,
                                     generation, None)
            future.add_done_callback(
                lambda _f, a=aggregate_id: self._finished(a))
            free -= 1
            if free <= 0:
                break

    def _finished(self, aggregate_id):
        with self._lock:
            self._in_flight.pop(aggregate_id, None)
        self._wake.set()

    # -- one pool -----------------------------------------------------------

    def reconcile_pool(self, aggregate_id, progress=None):
        """One full pass on one pool, to convergence or a blocking error.

        Waits (up to two lease times) for another holder's lease; returns a
        ``PassResult`` (``converged`` tells whether the pool matches).
        """
        deadline = time.monotonic() + 2 * self.conf.reconciler.lease_time
        while True:
            generation = db_api.acquire_lease(
                aggregate_id, self.owner, self.conf.reconciler.lease_time)
            if generation is not None:
                break
            if db_api.get_pool(aggregate_id) is None:
                return PassResult(aggregate_id, False, reasons=[
                    "aggregate %s is not a hypervisor pool" % aggregate_id])
            if time.monotonic() > deadline or self._stopping.is_set():
                return PassResult(aggregate_id, False, reasons=[
                    "another engine holds the pool's lease"])
            time.sleep(0.2)
        return self._leased_pass(aggregate_id, generation, progress)

    def _leased_pass(self, aggregate_id, generation, progress):
        due_at = None
        started = _now()
        try:
            result = self._pass(aggregate_id, generation, progress)
            due_at = self._next_due(aggregate_id, result)
            return result
        except LeaseLost:
            LOG.warning("Pool %s: lease lost (generation %s); another engine "
                        "took over", aggregate_id, generation)
            return PassResult(aggregate_id, False, error="lease lost")
        except Stopping:
            due_at = _now()
            return PassResult(aggregate_id, False, error="stopping")
        except Exception as exc:  # noqa: BLE001 - keep the worker alive
            LOG.exception("Pool %s: reconciliation failed", aggregate_id)
            due_at = _now() + datetime.timedelta(
                seconds=self.conf.reconciler.retry_max_backoff)
            try:
                db_api.update_pool(aggregate_id, last_error=str(exc)[:2000],
                                   last_error_code=type(exc).__name__)
            except Exception:  # noqa: BLE001
                pass
            return PassResult(aggregate_id, False, error=str(exc))
        finally:
            try:
                db_api.release_lease(aggregate_id, self.owner, generation,
                                     due_at=due_at, marked_since=started)
            except Exception:  # noqa: BLE001
                LOG.exception("Pool %s: could not release the lease",
                              aggregate_id)

    def _next_due(self, aggregate_id, result):
        pool = db_api.get_pool(aggregate_id)
        if pool is None or pool["state"] == db_api.POOL_DISMISSED:
            return None
        if result.converged:
            seconds = self.conf.reconciler.resync_interval
        else:
            attempts = max([m["attempts"] for m in
                            db_api.list_members(aggregate_id)] + [1])
            seconds = self._backoff(attempts)
        return _now() + datetime.timedelta(seconds=seconds)

    def _backoff(self, attempt):
        wait = tenacity.wait_exponential(
            multiplier=self.conf.reconciler.retry_initial_backoff,
            max=self.conf.reconciler.retry_max_backoff)
        state = tenacity.RetryCallState(None, None, (), {})
        state.attempt_number = max(1, attempt)
        return wait(state)

    # -- the pass -----------------------------------------------------------

    def _pass(self, aggregate_id, generation, progress):
        agg = db_api.get_aggregate(aggregate_id)
        ctx = _Pass(aggregate_id, generation, progress,
                    cause=(agg or {}).get("last_cause") or "resync",
                    last_renew=time.monotonic())
        self._abandon_stale_operations(ctx)
        steps = []
        for _ in range(MAX_ITERATIONS):
            self._check_running(ctx)
            try:
                outcome, steps, observed, desired = self._iterate_with_retry(
                    ctx)
            except errors.XapiError as exc:
                # NOTE(park): permanent, or transient past max_attempts:
                # the member goes to error and the others go on; an error
                # no member owns puts the pool in error.
                if self._park(ctx, exc):
                    continue
                return self._finish(ctx, None, None, [])
            except _WaitTimeout as exc:
                LOG.warning("Pool %s: %s", aggregate_id, exc)
                self._count_attempt(aggregate_id, exc.host)
                return self._finish(ctx, desired=None, observed=None,
                                    steps=[planner.Step(planner.BLOCKED,
                                                        exc.host,
                                                        reason=str(exc))])
            if outcome == "acted":
                continue
            return self._finish(ctx, desired, observed, steps)
        return self._finish(ctx, None, None, steps)

    def _iterate_with_retry(self, ctx):
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(errors.is_transient),
            wait=tenacity.wait_exponential(
                multiplier=self.conf.reconciler.retry_initial_backoff,
                max=self.conf.reconciler.retry_max_backoff),
            stop=tenacity.stop_after_attempt(
                self.conf.reconciler.max_attempts),
            sleep=lambda seconds: self._sleep(ctx, seconds),
            before_sleep=lambda state: LOG.warning(
                "Pool %s: transient xapi error, retrying: %s",
                ctx.aggregate_id, state.outcome.exception()),
            reraise=True)
        return retrying(self._iterate, ctx)

    def _iterate(self, ctx):
        """Observe, plan, execute up to the first mutation."""
        agg = db_api.get_aggregate(ctx.aggregate_id)
        desired = _desired(agg)
        pool_row = db_api.get_pool(ctx.aggregate_id)
        members = {m["host"]: m for m in
                   db_api.list_members(ctx.aggregate_id)}
        if desired is None or pool_row is None:
            return "done", [], planner.Observed(), desired
        if desired.managed:
            for host in desired.hosts:
                if host not in members:
                    db_api.upsert_member(ctx.aggregate_id, host,
                                         state=db_api.MEMBER_PENDING)
                    members[host] = {"state": db_api.MEMBER_PENDING,
                                     "attempts": 0}
        observed = self._observe(ctx, desired, pool_row, members)
        steps = planner.plan_pool_changes(
            desired, observed, members,
            force=self.conf.xenserver.use_join_force)
        self._record_observation(ctx, desired, pool_row, observed, steps)
        for step in steps:
            self._check_running(ctx)
            self._execute(ctx, step, observed)
            if step.kind not in _CONTINUE_AFTER:
                # NOTE(replan): after a mutation the world changed; plan
                # again from fresh facts instead of trusting this plan.
                return "acted", steps, observed, desired
        return "done", steps, observed, desired

    # -- observation --------------------------------------------------------

    def _observe(self, ctx, desired, pool_row, members, record=True):
        inventory = db_api.get_hosts(set(desired.hosts) | set(members)
                                     | {pool_row["master"]} - {None})
        ctx.inventory = inventory
        observed = planner.Observed()
        ctx.master_session = None
        problems = []
        recorded = pool_row["master"]
        known_members = {h for h, m in members.items()
                         if m.get("state") == db_api.MEMBER_ACTIVE}
        if desired.managed:
            candidates = planner.master_candidates(desired, recorded, members)
        else:
            # NOTE(dismiss): an unmanaged aggregate is only looked at through
            # the master we set up, never by adopting one of its hosts.
            candidates = [recorded] if recorded else []
        for name in candidates:
            host = inventory.get(name)
            if host is None:
                continue
            if recorded and problems and name != recorded \
                    and name not in known_members:
                # NOTE(slow-master): the pool exists but its master (and
                # members) could not be read just now; a desired host that
                # is not a member yet must not found a second pool.
                continue
            sess = self.sessions.get(host["xapi_url"], follow_master=True)
            try:
                snap = operations.read_pool(sess)
            except errors.XapiError as exc:
                problems.append("%s: %s" % (name, exc))
                continue
            redirected = sess.url != host["xapi_url"]
            if redirected and name != recorded and name not in known_members:
                # A desired host that is a slave elsewhere does not make
                # that other pool ours.
                continue
            observed.pool = snap
            ctx.master_session = sess
            break
        if observed.pool is None and recorded and problems:
            observed.master_problem = "pool master unreachable (%s)" % (
                "; ".join(problems))
        names = list(dict.fromkeys(list(desired.hosts) + list(members)))
        mapped = set()
        if observed.pool is not None:
            snap = observed.pool
            for name in names:
                host = inventory.get(name)
                if host is None:
                    continue
                ref = (snap.host_ref_by_uuid(host["xenserver_uuid"])
                       or snap.host_ref_by_address(
                           records.url_host(host["xapi_url"])))
                if ref is None or ref in mapped:
                    continue
                mapped.add(ref)
                rec = snap.hosts[ref]
                observed.hosts[name] = planner.HostView(
                    name, planner.IN_POOL, url=host["xapi_url"],
                    uuid=rec.get("uuid"), ref=ref)
                if ref == snap.master_ref:
                    observed.master = name
                if record and host["xenserver_uuid"] != rec.get("uuid"):
                    db_api.set_host_xenserver_uuid(name, rec.get("uuid"))
            observed.unknown_members = [r for r in snap.hosts
                                        if r not in mapped]
            if observed.master is None:
                observed.master_problem = (
                    "pool master %s is not a registered compute host" %
                    snap.master.get("address"))
                observed.pool = None
                observed.hosts = {}
        if not desired.managed:
            return observed
        for name in desired.hosts:
            if name in observed.hosts:
                continue
            if (members.get(name) or {}).get("state") == db_api.MEMBER_ERROR:
                continue
            observed.hosts[name] = self._observe_one(name, inventory, record)
        return observed

    def _observe_one(self, name, inventory, record):
        host = inventory.get(name)
        if host is None:
            return planner.HostView(name, planner.UNREGISTERED)
        url = host["xapi_url"]
        sess = self.sessions.get(url, follow_master=False)
        try:
            snap = operations.read_pool(sess)
        except errors.XapiError as exc:
            if exc.code == "HOST_IS_SLAVE":
                return planner.HostView(name, planner.OTHER_POOL, url=url,
                                        detail=(exc.params or ["?"])[0])
            return planner.HostView(name, planner.UNREACHABLE, url=url,
                                    detail=str(exc), code=exc.code,
                                    params=tuple(exc.params))
        uuid_ = snap.master_uuid
        if record and uuid_ and host["xenserver_uuid"] != uuid_:
            db_api.set_host_xenserver_uuid(name, uuid_)
        return planner.HostView(name, planner.STANDALONE, url=url,
                                uuid=uuid_, snapshot=snap)

    def _record_observation(self, ctx, desired, pool_row, observed, steps):
        fields = {}
        if observed.pool is not None:
            if pool_row["master"] != observed.master:
                fields["master"] = observed.master
            if pool_row["pool_uuid"] != observed.pool.uuid:
                fields["pool_uuid"] = observed.pool.uuid
        if desired.managed and pool_row["state"] in (
                db_api.POOL_CREATED, db_api.POOL_ACTIVE) and \
                any(s.mutating for s in steps):
            fields["state"] = db_api.POOL_CHANGING
        if fields:
            db_api.update_pool(ctx.aggregate_id, **fields)

    # -- execution ----------------------------------------------------------

    def _execute(self, ctx, step, observed):
        handler = getattr(self, "_do_" + step.kind)
        handler(ctx, step, observed)

    def _do_blocked(self, ctx, step, observed):
        LOG.info("Pool %s: blocked: %s", ctx.aggregate_id, step.reason)
        if step.host and step.params.get("code"):
            # Not parked: the host is looked at again after the backoff;
            # the code is recorded so that pool show says why it waits.
            db_api.upsert_member(ctx.aggregate_id, step.host,
                                 error_code=step.params["code"][:255],
                                 error_params=step.params["params"])

    def _do_preflight(self, ctx, step, observed):
        if not step.failures:
            db_api.upsert_member(ctx.aggregate_id, step.host,
                                 state=db_api.MEMBER_PREFLIGHT,
                                 error_code=None, error_params=None)
            return
        failures = step.failures
        code = "+".join(f.code for f in failures)
        params = (list(failures[0].params) if len(failures) == 1 else
                  ["%s %s" % (f.code, " ".join(f.params)) for f in failures])
        LOG.warning("Pool %s: %s fails preflight: %s", ctx.aggregate_id,
                    step.host, code)
        op_id = self._journal_start(ctx, "preflight", step)
        self._journal_finish(ctx, op_id, db_api.OP_FAILED, code, params)
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_ERROR, error_code=code[:255],
                             error_params=params, xenserver_uuid=(
                                 observed.hosts[step.host].uuid))
        db_api.update_pool(ctx.aggregate_id, last_error_code=code[:255],
                           last_error="%s: %s" % (step.host, " ".join(
                               f.remediation for f in failures))[:2000])

    def _do_join(self, ctx, step, observed):
        view = observed.hosts[step.host]
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_JOINING,
                             xenserver_uuid=view.uuid)
        xs = self.conf.xenserver
        joiner = self.sessions.get(view.url, follow_master=False)
        self._mutate(ctx, "join", step, lambda: operations.join_pool(
            joiner, step.params["master_address"], xs.connection_username,
            xs.connection_password, force=step.params["force"]))

    def _do_wait_member(self, ctx, step, observed):
        uuid_ = step.params.get("uuid") or (
            observed.hosts.get(step.host) and observed.hosts[step.host].uuid)
        deadline = time.monotonic() + self.conf.xenserver.join_timeout
        live_since = None
        while True:
            snap = operations.read_pool(ctx.master_session)
            ref = snap.host_ref_by_uuid(uuid_)
            if ref is not None:
                if readiness.member_complete(snap, ref):
                    return
                if snap.host_live(ref) and snap.host_enabled(ref):
                    live_since = live_since or time.monotonic()
                    if time.monotonic() - live_since >= PBD_SETTLE_TIME:
                        return
            if time.monotonic() > deadline:
                raise _WaitTimeout(step.host, (
                    "%s not live and enabled on the master %.0f s after "
                    "joining" % (step.host,
                                 self.conf.xenserver.join_timeout)))
            self._sleep(ctx, MEMBER_POLL_INTERVAL)

    def _do_eject(self, ctx, step, observed):
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_EJECTING)
        self._mutate(ctx, "eject", step, lambda: operations.eject_host(
            ctx.master_session, step.params["host_ref"]))

    def _do_wait_standalone(self, ctx, step, observed):
        host = ctx.inventory.get(step.host)
        if host is None:
            return
        deadline = time.monotonic() + self.conf.xenserver.eject_timeout
        probe = self.sessions.fresh(host["xapi_url"], follow_master=False,
                                    timeout=min(
                                        5.0, self.conf.xenserver.call_timeout))
        while True:
            try:
                snap = operations.read_pool(probe)
                if len(snap.hosts) == 1:
                    probe.logout()
                    return
            except errors.XapiError:
                probe = self.sessions.fresh(
                    host["xapi_url"], follow_master=False,
                    timeout=min(5.0, self.conf.xenserver.call_timeout))
            if time.monotonic() > deadline:
                raise _WaitTimeout(step.host, (
                    "%s did not come back standalone %.0f s after eject" % (
                        step.host, self.conf.xenserver.eject_timeout)))
            self._sleep(ctx, MEMBER_POLL_INTERVAL)

    def _do_refuse_eject(self, ctx, step, observed):
        code, params = "HOST_HAS_RESIDENT_VMS", list(step.params["vms"])
        op_id = self._journal_start(ctx, "eject", step)
        self._journal_finish(ctx, op_id, db_api.OP_FAILED, code, params)
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_ERROR, error_code=code,
                             error_params=params)
        db_api.update_pool(ctx.aggregate_id, last_error_code=code,
                           last_error=(
                               "%s: migrate or shut down %s, then "
                               "'poolmgr-manage pool retry'" % (
                                   step.host, ", ".join(params)))[:2000])

    def _do_mark_removed(self, ctx, step, observed):
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_REMOVED, error_code=None,
                             error_params=None, attempts=0)

    def _do_mark_active(self, ctx, step, observed):
        view = observed.hosts.get(step.host)
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_ACTIVE, error_code=None,
                             error_params=None, attempts=0,
                             next_attempt_at=None,
                             xenserver_uuid=view.uuid if view else None)

    def _do_set_name_label(self, ctx, step, observed):
        self._mutate(ctx, "set_name_label", step, lambda: operations.
                     set_pool_name(ctx.master_session, observed.pool.pool_ref,
                                   step.params["name"]))

    def _do_clear_name(self, ctx, step, observed):
        self._mutate(ctx, "clear_name", step, lambda: operations.
                     set_pool_name(ctx.master_session, observed.pool.pool_ref,
                                   ""))

    def _do_release_master(self, ctx, step, observed):
        self._mutate(ctx, "release_master", step, lambda: operations.
                     set_pool_name(ctx.master_session, observed.pool.pool_ref,
                                   ""))
        db_api.upsert_member(ctx.aggregate_id, step.host,
                             state=db_api.MEMBER_REMOVED, error_code=None,
                             error_params=None)
        db_api.update_pool(ctx.aggregate_id, master=None, pool_uuid=None)

    def _do_designate_master(self, ctx, step, observed):
        new = observed.hosts[step.host]
        self._mutate(ctx, "designate_master", step, lambda: operations.
                     designate_new_master(ctx.master_session,
                                          step.params["host_ref"]))
        deadline = time.monotonic() + self.conf.xenserver.join_timeout
        follower = self.sessions.get(new.url, follow_master=True)
        while True:
            try:
                snap = operations.read_pool(follower)
                if snap.master_uuid == new.uuid:
                    break
            except errors.XapiError as exc:
                if not exc.transient:
                    raise
            if time.monotonic() > deadline:
                raise _WaitTimeout(step.host, "%s did not become master" %
                                   step.host)
            self._sleep(ctx, MEMBER_POLL_INTERVAL)
        db_api.update_pool(ctx.aggregate_id, master=step.host)

    def _do_plug_pbd(self, ctx, step, observed):
        self._mutate(ctx, "plug_pbd", step, lambda: operations.plug_pbd(
            ctx.master_session, step.params["pbd_ref"]))

    def _do_create_pbd(self, ctx, step, observed):
        self._mutate(ctx, "create_pbd", step, lambda: operations.create_pbd(
            ctx.master_session, step.params["host_ref"],
            step.params["sr_ref"], step.params["device_config"]))

    def _do_dismiss(self, ctx, step, observed):
        db_api.update_pool(ctx.aggregate_id, state=db_api.POOL_DISMISSED,
                           live_migration_ready=False, due_at=None,
                           reasons=["aggregate is not a hypervisor pool any "
                                    "more: poolmgr no longer manages it"])

    # -- mutation guard: fencing + journal ----------------------------------

    def _mutate(self, ctx, kind, step, call):
        self._fence(ctx)
        op_id = self._journal_start(ctx, kind, step)
        try:
            call()
        except errors.XapiError as exc:
            self._journal_finish(ctx, op_id, db_api.OP_FAILED, exc.code,
                                 exc.params)
            exc.host = step.host
            exc.step_kind = kind
            raise
        except BaseException as exc:
            self._journal_finish(ctx, op_id, db_api.OP_ABANDONED,
                                 type(exc).__name__, [str(exc)[:200]])
            raise
        self._journal_finish(ctx, op_id, db_api.OP_SUCCEEDED)
        ctx.steps_executed += 1

    def _fence(self, ctx):
        """Renew the lease; refuse to touch xapi if it is no longer ours."""
        if not db_api.renew_lease(ctx.aggregate_id, self.owner,
                                  ctx.generation,
                                  self.conf.reconciler.lease_time):
            raise LeaseLost()
        ctx.last_renew = time.monotonic()

    def _journal_start(self, ctx, kind, step):
        text = step.describe()
        op_id = db_api.journal_start(
            ctx.aggregate_id, kind, host=step.host, step=text,
            cause=ctx.cause, owner=self.owner, generation=ctx.generation)
        self._report(ctx, {"id": op_id, "kind": kind, "host": step.host,
                           "step": text, "status": db_api.OP_STARTED})
        return op_id

    def _journal_finish(self, ctx, op_id, status, code=None, params=None):
        db_api.journal_finish(op_id, status, xapi_error_code=code,
                              xapi_error_params=params)
        self._report(ctx, {"id": op_id, "kind": None, "host": None,
                           "step": None, "status": status,
                           "xapi_error_code": code,
                           "xapi_error_params": params})

    def _report(self, ctx, op):
        if ctx.progress is not None:
            try:
                ctx.progress(op)
            except Exception:  # noqa: BLE001 - a display must not break us
                LOG.debug("progress callback failed", exc_info=True)

    def _abandon_stale_operations(self, ctx):
        for op in db_api.unfinished_operations(ctx.aggregate_id):
            if (op["owner"], op["generation"]) == (self.owner,
                                                   ctx.generation):
                continue
            # NOTE(crash): the step's effect is judged by observing xapi,
            # not by this row; it is closed so history reads cleanly.
            db_api.journal_finish(op["id"], db_api.OP_ABANDONED)

    # -- errors, waiting, finishing -----------------------------------------

    def _park(self, ctx, exc):
        host = getattr(exc, "host", None)
        LOG.warning("Pool %s: %s%s", ctx.aggregate_id,
                    ("%s parked in error: " % host) if host else "", exc)
        if host is not None:
            db_api.upsert_member(ctx.aggregate_id, host,
                                 state=db_api.MEMBER_ERROR,
                                 error_code=exc.code[:255],
                                 error_params=exc.params)
            db_api.update_pool(ctx.aggregate_id, last_error_code=exc.code,
                               last_error=("%s: %s" % (host, exc))[:2000])
            return True
        ctx.pool_error = (exc.code, str(exc))
        db_api.update_pool(ctx.aggregate_id, last_error_code=exc.code,
                           last_error=str(exc)[:2000])
        return False

    def _count_attempt(self, aggregate_id, host):
        if host is None:
            return
        for member in db_api.list_members(aggregate_id):
            if member["host"] == host:
                db_api.upsert_member(aggregate_id, host,
                                     attempts=member["attempts"] + 1)

    def _check_running(self, ctx):
        if self._stopping.is_set():
            raise Stopping()
        if time.monotonic() - ctx.last_renew > \
                self.conf.reconciler.lease_time / 3.0:
            self._fence(ctx)

    def _sleep(self, ctx, seconds):
        end = time.monotonic() + seconds
        while True:
            self._check_running(ctx)
            left = end - time.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, max(
                0.05, self.conf.reconciler.lease_time / 4.0)))

    def _finish(self, ctx, desired, observed, steps):
        blocked = [s for s in steps if s.kind == planner.BLOCKED]
        for step in blocked:
            self._count_attempt(ctx.aggregate_id, step.host)
        pool_row = db_api.get_pool(ctx.aggregate_id)
        if pool_row is None:
            return PassResult(ctx.aggregate_id, True, steps=ctx.steps_executed)
        if pool_row["state"] == db_api.POOL_DISMISSED:
            return PassResult(ctx.aggregate_id, True,
                              state=db_api.POOL_DISMISSED,
                              steps=ctx.steps_executed,
                              reasons=pool_row["reasons"])
        members = db_api.list_members(ctx.aggregate_id)
        converged = not blocked and desired is not None
        fields = {"last_reconciled_at": _now()}
        reasons = [s.reason for s in blocked]
        if observed is not None and observed.pool is not None:
            names = observed.names_by_ref()
            expected = [h for h in desired.hosts
                        if h not in observed.hosts
                        or observed.hosts[h].status != planner.IN_POOL]
            result = readiness.assess(observed.pool, names=names,
                                      expected=expected)
            fields.update(live_migration_ready=result.ready,
                          sr_matrix=result.matrix)
            reasons = result.reasons + [r for r in reasons
                                        if r not in result.reasons]
            state = db_api.POOL_ACTIVE if converged else db_api.POOL_CHANGING
        else:
            fields.update(live_migration_ready=False, sr_matrix=None)
            if desired is not None and not desired.hosts:
                reasons = reasons or ["the aggregate has no hosts"]
                state = db_api.POOL_CREATED
            else:
                reasons = reasons or ["no pool master reachable"]
                state = (db_api.POOL_CHANGING
                         if pool_row["state"] != db_api.POOL_CREATED or
                         ctx.steps_executed else db_api.POOL_CREATED)
        if ctx.pool_error is not None:
            state = db_api.POOL_ERROR
        for member in members:
            if member["state"] == db_api.MEMBER_ERROR:
                reasons.append("%s in error: %s %s" % (
                    member["host"], member["error_code"],
                    " ".join(member["error_params"] or [])))
        if not any(m["state"] == db_api.MEMBER_ERROR for m in members) and \
                ctx.pool_error is None and converged:
            fields.update(last_error=None, last_error_code=None)
        fields["state"] = state
        fields["reasons"] = reasons
        db_api.update_pool(ctx.aggregate_id, **fields)
        LOG.info("Pool %s: pass done, state %s, %d step(s), %s",
                 ctx.aggregate_id, state, ctx.steps_executed,
                 "converged" if converged else "not converged")
        return PassResult(ctx.aggregate_id, converged, state=state,
                          steps=ctx.steps_executed, reasons=reasons)

    # -- dry run ------------------------------------------------------------

    def plan_pool(self, aggregate_id):
        """Observe xapi now; return what a pass would do. Mutates nothing."""
        agg = db_api.get_aggregate(aggregate_id)
        if agg is None:
            raise db_api.NotFound("aggregate %s not found" % aggregate_id)
        desired = _desired(agg)
        pool_row = db_api.get_pool(aggregate_id) or {
            "master": None, "pool_uuid": None, "state": db_api.POOL_CREATED}
        members = {m["host"]: m for m in db_api.list_members(aggregate_id)}
        ctx = _Pass(aggregate_id, None)
        observed = self._observe(ctx, desired, pool_row, members,
                                 record=False)
        steps = planner.plan_pool_changes(
            desired, observed, members,
            force=self.conf.xenserver.use_join_force)
        master = observed.master
        calls, failures = [], []
        for step in steps:
            if step.kind == planner.PREFLIGHT:
                for f in step.failures:
                    failures.append(dict(f.as_dict(), host=step.host))
                continue
            if step.kind == planner.BLOCKED:
                failures.append({"host": step.host, "code": "BLOCKED",
                                 "params": [], "remediation": step.reason})
                continue
            if step.kind == planner.REFUSE_EJECT:
                failures.append({"host": step.host,
                                 "code": "HOST_HAS_RESIDENT_VMS",
                                 "params": step.params["vms"],
                                 "remediation": "migrate or shut down these "
                                 "VMs, then 'poolmgr-manage pool retry'"})
                continue
            if step.kind in (planner.MARK_ACTIVE, planner.MARK_REMOVED,
                             planner.DISMISS):
                continue
            calls.append({"kind": step.kind, "host": step.host,
                          "mutating": step.mutating,
                          "text": step.describe(master)})
        ready, reasons = False, []
        if observed.pool is not None:
            result = readiness.assess(observed.pool,
                                      names=observed.names_by_ref())
            ready, reasons = result.ready, result.reasons
        return Plan(aggregate_id=aggregate_id, name=desired.name,
                    master=master, calls=calls, failures=failures,
                    live_migration_ready=ready, reasons=reasons)


# -- python -m poolmgr.reconciler ---------------------------------------------

def main(argv=None):
    """Run the engine alone: ``--aggregate ID`` once, else until SIGTERM."""
    from poolmgr import service
    parser = argparse.ArgumentParser(prog="python -m poolmgr.reconciler")
    parser.add_argument("--aggregate", type=int)
    parser.add_argument("--owner")
    args, rest = parser.parse_known_args(argv)
    conf = service.prepare_service(rest)
    db_api.configure(conf)
    engine = Reconciler(conf, owner=args.owner)
    if args.aggregate is not None:
        result = engine.reconcile_pool(args.aggregate)
        return 0 if result.converged else 1
    stop = threading.Event()

    def _terminate(signum, frame):
        stop.set()
        engine.stop()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    engine.run_forever(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
