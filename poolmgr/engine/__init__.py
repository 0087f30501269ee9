"""The pool engine: claim a due pool, observe, plan, journaled steps.

The rooms, one concern each:

- ``scheduler``: due pools, leases with fencing generations, due times;
- ``passes``: one pass over one leased pool (observe -> plan -> step);
- ``waits``: what a waiting pool waits for, and one look at it;
- ``observe``: what xapi says about the pool and its desired hosts, the
  per-pool event.from feeds;
- ``steps/``: one handler per step kind, dispatched from a table;
- ``journal``: the fenced before/after rows of every xapi mutation;
- ``status``: the pool's state, reasons and readiness at the end of a pass;
- ``dryrun``: ``poolmgr-manage pool plan``;
- ``canary``: the live-migration proof (``poolmgr-manage pool prove``).

``Engine`` is the facade the service, ``poolmgr-manage`` and the tests use.
"""

import os
import socket
import threading
import uuid

from oslo_log import log as logging

from poolmgr.engine import canary
from poolmgr.engine import context
from poolmgr.engine import dryrun
from poolmgr.engine import observe
from poolmgr.engine import passes
from poolmgr.engine import scheduler
from poolmgr.engine import status
from poolmgr.xenapi import session as xsession

LOG = logging.getLogger(__name__)

PassResult = status.PassResult
Plan = dryrun.Plan
LeaseLost = context.LeaseLost
Stopping = context.Stopping
# reconcile_pool runs at most this many passes (a plan that keeps finding
# work is cut there, as a pass loop was).
MAX_PASSES = 200
# NOTE(on-demand): reconcile_pool's own thread waits between the passes of
# a waiting pool; the look itself long-polls, so this pause is short.
_ON_DEMAND_WAIT = 0.2


class Engine:
    """Reconciles pools: ``run_forever`` in the daemon, one pool on demand."""

    def __init__(self, conf, owner=None):
        self.conf = conf
        self.owner = owner or "%s:%d:%s" % (socket.gethostname(), os.getpid(),
                                            uuid.uuid4().hex[:6])
        self.sessions = xsession.SessionCache(conf)
        self.feeds = observe.FeedCache()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.scheduler = scheduler.Scheduler(conf, self.owner, self.sessions,
                                             self._stopping, self._wake,
                                             feeds=self.feeds)

    def wake(self):
        """Look for due pools now rather than at the next poll."""
        self.scheduler.wake()

    def stop(self):
        """Stop claiming; passes finish the step in flight and release."""
        self._stopping.set()
        self.scheduler.wake()

    def run_forever(self, stop_event=None):
        self.scheduler.run_forever(stop_event or threading.Event())
        self.sessions.close()
        LOG.info("Reconciler %s stopped", self.owner)

    def reconcile_pool(self, aggregate_id, progress=None):
        """Passes on one pool, to convergence or until it is settled.

        Drives the pool as the daemon would, on the caller's thread: after
        a step the next pass runs at once, a waiting pool is looked at
        again, a transient error is retried after its backoff. Returns the
        last ``PassResult`` (``converged`` tells whether the pool matches;
        ``steps`` counts the steps of every pass). Waits (up to two lease
        times) for another holder's lease.
        """
        steps = 0
        result = None
        # NOTE(marked): a notification stored at any time during this call
        # keeps the pool due afterwards, as it would after one long pass.
        started = context.now()
        for _ in range(MAX_PASSES):
            generation, refused = self.scheduler.acquire_waiting(
                aggregate_id)
            if generation is None:
                return refused
            result = self.scheduler.leased_pass(aggregate_id, generation,
                                                progress, started=started,
                                                on_demand=True)
            steps += result.steps
            result.steps = steps
            if result.pending is None or result.error or \
                    self._stopping.is_set():
                return result
            pause = 0.0
            if result.pending == passes.RETRY:
                pause = result.due_in or 0.0
            elif result.pending == passes.WAIT:
                pause = min(result.due_in or 0.0, _ON_DEMAND_WAIT)
            if pause and self._stopping.wait(pause):
                return result
        return result

    def prove_pool(self, aggregate_id, progress=None):
        """The canary proof now (``pool prove``): (record or None, one
        line). Waits (up to two lease times) for another holder's lease."""
        return canary.prove_pool(self.conf, self.scheduler, aggregate_id,
                                 progress)

    def stats(self):
        """What this engine keeps in memory (feeds) and how it read xapi."""
        return dict(self.feeds.stats(), in_flight=self.scheduler.in_flight())

    def plan_pool(self, aggregate_id):
        """Observe xapi now; return what a pass would do. Mutates nothing."""
        return dryrun.plan_pool(self.conf, self.sessions, aggregate_id)
