"""The scheduler: claim due pools, hold their leases, set the next due time.

A pool is due when ``pools.due_at <= now`` and its lease is free or
expired. ``run_forever`` claims due pools up to ``[reconciler] threads``
at a time, each under a lease with a fencing generation, runs one pass on
a worker thread and releases the lease with the pool's next due time: at
once after a step, after ``wait_poll_interval`` while a join, eject or
hand-over is under way, after the backoff of a transient error or of a
blocked attempt, after ``resync_interval`` when converged. Between passes
a pool holds no thread and no lease, so a waiting pool costs nothing and
another engine may take it.

A due pool that waits is looked at on a look thread (``[reconciler]
wait_threads``, besides ``threads``): its look long-polls the master
(event.from, up to ``wait_long_poll``) and ends as soon as the change
shows, so a join is seen when it takes effect, not at the next due time.
Waiting pools beyond the look threads are looked at on the pass threads
without waiting on the master.
"""

import concurrent.futures
import datetime
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import sqlalchemy.exc

from poolmgr.db import api as db_api
from poolmgr.db import migration
from poolmgr.engine import context
from poolmgr.engine import passes
from poolmgr.engine import status
from poolmgr import utils

LOG = logging.getLogger(__name__)

DATABASE_ERRORS = (db_exc.DBError, sqlalchemy.exc.SQLAlchemyError)


def database_error(exc):
    """One line for a database error: its class, driver code and text."""
    inner = exc
    for attr in ("inner_exception", "orig"):  # oslo.db, then SQLAlchemy
        inner = getattr(inner, attr, None) or inner
    args = getattr(inner, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    text = (str(args[1]) if code is not None and len(args) > 1
            else str(inner)).strip().splitlines() or [""]
    return utils.mask_url("%s%s: %s" % (
        type(exc).__name__, " (%s)" % code if code is not None else "",
        text[0]))[:300]


class Scheduler:
    def __init__(self, conf, owner, sessions, stopping, wake, feeds=None):
        self.conf = conf
        self.owner = owner
        self.sessions = sessions
        self.feeds = feeds
        self._stopping = stopping
        self._wake = wake
        self._lock = threading.Lock()
        self._in_flight = {}
        self._looking = set()      # of _in_flight: on a look thread
        self._db_problem = None
        self._long_polls = threading.Semaphore(
            max(1, conf.reconciler.threads // 2))
        self._hint = None          # monotonic time a released pool is due
        self._external = False     # wake() was called
        self._backlog = False      # the last claim left due pools unclaimed
        self._claimed_at = None    # the "now" of the last claim's due list

    # -- the loop -----------------------------------------------------------

    def run_forever(self, stop_event):
        threads = self.conf.reconciler.threads
        looks = self.conf.reconciler.wait_threads
        LOG.info("Reconciler %s running with %d threads and %d look "
                 "threads", self.owner, threads, looks)
        with concurrent.futures.ThreadPoolExecutor(
                threads + looks, thread_name_prefix="poolmgr-pool") \
                as executor:
            while not (stop_event.is_set() or self._stopping.is_set()):
                try:
                    with db_api.held_connection():
                        self._claim(executor, threads)
                except DATABASE_ERRORS as exc:
                    self._database_unusable(exc)
                except Exception:  # noqa: BLE001 - keep the loop alive
                    LOG.exception("Could not look for due pools")
                else:
                    self._database_usable()
                self._idle(stop_event)
            self._stopping.set()

    def _idle(self, stop_event):
        """Sleep until the next due time, a wake-up or a stop.

        A pass that ends moves the next due time earlier (``_hint``) but
        does not make the loop claim at once, see NOTE(fair).
        """
        deadline = time.monotonic() + self._idle_time()
        while not (stop_event.is_set() or self._stopping.is_set()):
            with self._lock:
                external, self._external = self._external, False
                if external:
                    # The hint stays for the next sleep: the claim that
                    # follows may come before it is due.
                    return
                hint, self._hint = self._hint, None
            if hint is not None:
                deadline = min(deadline, hint)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(left)
            self._wake.clear()

    def wake(self):
        """Look for due pools now (engine.wake, a stop)."""
        with self._lock:
            self._external = True
        self._wake.set()

    def _database_unusable(self, exc):
        # NOTE(one-line): the loop polls every poll_interval; an outage or
        # a missing schema is said once, and once when it is over.
        if self._db_problem is None:
            self._db_problem = migration.describe_error(exc)
            LOG.error("Database unusable, pools wait until it is back: %s",
                      self._db_problem)
        else:
            LOG.debug("Database still unusable: %s", type(exc).__name__)

    def _database_usable(self):
        if self._db_problem is not None:
            LOG.info("Database usable again (it was: %s)", self._db_problem)
            self._db_problem = None

    def _idle_time(self):
        interval = self.conf.reconciler.poll_interval
        now = context.now()
        # NOTE(between): "later" is later than the last claim's list, not
        # than now: a pool that fell due between that list and this query
        # (a wait's look, released a second before) was neither claimed nor
        # waited for, and was claimed a poll_interval late (measured: a
        # tenth of a 10 x 16 build-out's joins started 0.5 s after their
        # member was complete).
        since = self._claimed_at or now
        try:
            # NOTE(spin): a pool due now that the claim just left alone is
            # in flight here (released, its thread not back yet; or its
            # lease expired during a long step) or waits for a free thread;
            # a finished pass wakes the loop. Claiming again at once would
            # spin on the database, so the loop sleeps until the first pool
            # due *later*. (It slept poll_interval whenever one was due
            # now, and so missed the due time of the others: a waiting
            # pool of a 10 x 16 build-out was claimed up to 2 s late.)
            due = db_api.next_due_time(now=since, later=True)
        except Exception:  # noqa: BLE001
            return interval
        if due is None:
            return interval
        return max(0.0, min(interval, (due - now).total_seconds()))

    def _claim(self, executor, threads):
        with self._lock:
            looking = len(self._looking)
            free = threads - (len(self._in_flight) - looking)
            free_looks = self.conf.reconciler.wait_threads - looking
            busy = set(self._in_flight)
        if free <= 0 and free_looks <= 0:
            self._backlog = True
            self._claimed_at = None
            return
        limit = max(free, 0) + max(free_looks, 0) + len(busy)
        claimed_at = context.now()
        due = db_api.list_due_pools(limit=limit, now=claimed_at, waiting=True)
        self._claimed_at = claimed_at
        # NOTE(backlog): due pools left for want of a thread are claimed
        # when the next thread frees (_finished), not at the next poll:
        # the loop sleeps poll_interval while a due pool waits for a thread
        # (NOTE(spin)), and with 100 pools due it slept while most threads
        # sat idle (measured: a waiting pool claimed 3.6 s after it was due,
        # p50, in a 100 x 5 build-out).
        backlog = len(due) >= limit
        for i, (aggregate_id, waiting, seen) in enumerate(due):
            if aggregate_id in busy or self._stopping.is_set():
                continue
            look = waiting and free_looks > 0
            if not look and free <= 0:
                backlog = True
                continue
            # NOTE(wake-up): the pass's start is taken before the lease is
            # acquired; a notification that marks the pool due after it is
            # kept at release (see db.mirror._touch_pools).
            started = context.now()
            generation = db_api.acquire_lease(
                aggregate_id, self.owner, self.conf.reconciler.lease_time,
                expected=seen)
            if generation is None:
                continue
            with self._lock:
                self._in_flight[aggregate_id] = generation
                if look:
                    self._looking.add(aggregate_id)
            future = executor.submit(self._work, aggregate_id, generation,
                                     started, look)
            future.add_done_callback(
                lambda f, a=aggregate_id: self._finished(a, f))
            if look:
                free_looks -= 1
            else:
                free -= 1
            if free <= 0 and free_looks <= 0:
                backlog = backlog or i + 1 < len(due)
                break
        self._backlog = backlog

    def _work(self, aggregate_id, generation, started, look=False):
        """Passes on one claimed pool while each leaves it due at once.

        ``look``: on a look thread, whose look may always long-poll; the
        pass that follows a finished wait runs there too, but a further
        pass goes back to the pass threads (``threads`` bounds them).
        """
        with db_api.held_connection():
            return self._passes(aggregate_id, generation, started, look)

    def _passes(self, aggregate_id, generation, started, look):
        while True:
            result = self.leased_pass(
                aggregate_id, generation, None,
                None if look else self._long_polls, started=started)
            if result.pending != passes.ACT or self._stopping.is_set() or \
                    look:
                return result
            # NOTE(fair): the next pass of a pool that just took a step runs
            # on this thread at once; other pools are claimed only by the
            # poll loop at due times, so an engine that finishes many passes
            # does not win every due pool from the other engines.
            started = context.now()
            generation = db_api.acquire_lease(
                aggregate_id, self.owner, self.conf.reconciler.lease_time,
                expected=generation)
            if generation is None:
                return result

    def _hint_due(self, result):
        if result is None or result.pending is None:
            return
        when = time.monotonic() + (result.due_in or 0.0)
        with self._lock:
            self._hint = when if self._hint is None else min(self._hint,
                                                             when)
        self._wake.set()

    def in_flight(self):
        with self._lock:
            return len(self._in_flight)

    def _finished(self, aggregate_id, future=None):
        with self._lock:
            looking = len(self._looking)
            wait_threads = self.conf.reconciler.wait_threads
            full = (len(self._in_flight) - looking >=
                    self.conf.reconciler.threads or
                    0 < wait_threads <= looking)
            self._in_flight.pop(aggregate_id, None)
            self._looking.discard(aggregate_id)
        if full or self._backlog:
            # A thread is free again for pools that became due meanwhile
            # (or were left by the last claim, NOTE(backlog)).
            self.wake()
        elif future is not None and future.exception() is None:
            self._hint_due(future.result())

    # -- one pool -----------------------------------------------------------

    def acquire_waiting(self, aggregate_id):
        """The lease (its generation), waiting up to two lease times.

        Returns (generation, None) or (None, PassResult saying why not).
        """
        deadline = time.monotonic() + 2 * self.conf.reconciler.lease_time
        while True:
            generation = db_api.acquire_lease(
                aggregate_id, self.owner, self.conf.reconciler.lease_time)
            if generation is not None:
                return generation, None
            if db_api.get_pool(aggregate_id) is None:
                return None, status.PassResult(aggregate_id, False, reasons=[
                    "aggregate %s is not a hypervisor pool" % aggregate_id])
            if time.monotonic() > deadline or self._stopping.is_set():
                return None, status.PassResult(aggregate_id, False, reasons=[
                    "another engine holds the pool's lease"])
            time.sleep(0.2)

    def leased_pass(self, aggregate_id, generation, progress,
                    long_polls=None, started=None, on_demand=False):
        """One pass under the lease; the lease is released with the due time.

        ``long_polls`` bounds the worker threads waiting in an event.from
        long-poll at once (None: this caller's own thread may always wait).
        A pool marked due after ``started`` keeps that due time
        (db_api.release_lease); callers take ``started`` before they
        acquire the lease (default: now, for callers that hold it
        already). ``on_demand``: the caller runs the next pass itself, so a
        pass that leaves work pending leaves due_at as it is.
        """
        with db_api.held_connection():
            return self._leased_pass(aggregate_id, generation, progress,
                                     long_polls, started, on_demand)

    def _leased_pass(self, aggregate_id, generation, progress, long_polls,
                     started, on_demand):
        due_at = None
        started = started or context.now()
        ctx = context.PassContext(
            aggregate_id, generation, conf=self.conf, sessions=self.sessions,
            owner=self.owner, stopping=self._stopping, progress=progress,
            feeds=self.feeds, long_polls=long_polls)
        try:
            ctx.last_renew = time.monotonic()
            result = passes.run_pass(ctx)
            if not (on_demand and result.pending is not None):
                due_at = self._next_due(aggregate_id, result)
            return result
        except context.LeaseLost:
            LOG.warning("Pool %s: lease lost (generation %s); another engine "
                        "took over", aggregate_id, generation)
            return status.PassResult(aggregate_id, False, error="lease lost")
        except context.Stopping:
            due_at = context.now()
            return status.PassResult(aggregate_id, False, error="stopping")
        except Exception as exc:  # noqa: BLE001 - keep the worker alive
            if isinstance(exc, DATABASE_ERRORS):
                LOG.error("Pool %s: reconciliation failed, database "
                          "unusable: %s", aggregate_id, database_error(exc))
            else:
                LOG.exception("Pool %s: reconciliation failed", aggregate_id)
            due_at = context.now() + datetime.timedelta(
                seconds=self.conf.reconciler.retry_max_backoff)
            try:
                db_api.update_pool(aggregate_id, last_error=str(exc)[:2000],
                                   last_error_code=type(exc).__name__)
            except Exception:  # noqa: BLE001
                pass
            return status.PassResult(aggregate_id, False, error=str(exc))
        finally:
            try:
                db_api.release_lease(aggregate_id, self.owner, generation,
                                     due_at=due_at, marked_since=started,
                                     fields=ctx.release_fields)
            except DATABASE_ERRORS as exc:
                # NOTE(one-line): an outage is the database's, not a bug
                # here; the lease expires by itself after lease_time.
                LOG.error("Pool %s: could not release the lease, database "
                          "unusable: %s", aggregate_id, database_error(exc))
            except Exception:  # noqa: BLE001
                LOG.exception("Pool %s: could not release the lease",
                              aggregate_id)

    def _next_due(self, aggregate_id, result):
        if result.state == db_api.POOL_DISMISSED:
            return None
        if result.pending is not None or result.due_in is not None:
            # The pass said when (engine.passes, status.finish).
            return context.now() + datetime.timedelta(
                seconds=result.due_in or 0.0)
        pool = db_api.get_pool(aggregate_id)
        if pool is None or pool["state"] == db_api.POOL_DISMISSED:
            return None
        if result.converged:
            seconds = self.conf.reconciler.resync_interval
        else:
            attempts = max([m["attempts"] for m in
                            db_api.list_members(aggregate_id)]
                           + [pool.get("attempts") or 0, 1])
            seconds = context.backoff(self.conf, attempts)
        return context.now() + datetime.timedelta(seconds=seconds)
