"""The scheduler: claim due pools, hold their leases, set the next due time.

A pool is due when ``pools.due_at <= now`` and its lease is free or
expired. ``run_forever`` claims due pools up to ``[reconciler] threads``
at a time, each under a lease with a fencing generation, runs a pass on a
worker thread and releases the lease with the pool's next due time.
"""

import concurrent.futures
import datetime
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import sqlalchemy.exc
import tenacity

from poolmgr.db import api as db_api
from poolmgr.db import migration
from poolmgr.engine import context
from poolmgr.engine import passes
from poolmgr.engine import status

LOG = logging.getLogger(__name__)

DATABASE_ERRORS = (db_exc.DBError, sqlalchemy.exc.SQLAlchemyError)


class Scheduler:
    def __init__(self, conf, owner, sessions, stopping, wake):
        self.conf = conf
        self.owner = owner
        self.sessions = sessions
        self._stopping = stopping
        self._wake = wake
        self._lock = threading.Lock()
        self._in_flight = {}
        self._db_problem = None

    # -- the loop -----------------------------------------------------------

    def run_forever(self, stop_event):
        threads = self.conf.reconciler.threads
        LOG.info("Reconciler %s running with %d threads", self.owner, threads)
        with concurrent.futures.ThreadPoolExecutor(
                threads, thread_name_prefix="poolmgr-pool") as executor:
            while not (stop_event.is_set() or self._stopping.is_set()):
                try:
                    self._claim(executor, threads)
                except DATABASE_ERRORS as exc:
                    self._database_unusable(exc)
                except Exception:  # noqa: BLE001 - keep the loop alive
                    LOG.exception("Could not look for due pools")
                else:
                    self._database_usable()
                self._wake.wait(self._idle_time())
                self._wake.clear()
            self._stopping.set()

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
        try:
            due = db_api.next_due_time()
        except Exception:  # noqa: BLE001
            return interval
        if due is None:
            return interval
        return max(0.0, min(interval, (due - context.now()).total_seconds()))

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
            future = executor.submit(self.leased_pass, aggregate_id,
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

    def leased_pass(self, aggregate_id, generation, progress):
        due_at = None
        started = context.now()
        ctx = context.PassContext(
            aggregate_id, generation, conf=self.conf, sessions=self.sessions,
            owner=self.owner, stopping=self._stopping, progress=progress)
        try:
            result = passes.run_pass(ctx)
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
            seconds = self.backoff(attempts)
        return context.now() + datetime.timedelta(seconds=seconds)

    def backoff(self, attempt):
        wait = tenacity.wait_exponential(
            multiplier=self.conf.reconciler.retry_initial_backoff,
            max=self.conf.reconciler.retry_max_backoff)
        state = tenacity.RetryCallState(None, None, (), {})
        state.attempt_number = max(1, attempt)
        return wait(state)
