"""The pool engine: claim a due pool, observe, plan, journaled steps.

The rooms, one concern each:

- ``scheduler``: due pools, leases with fencing generations, due times;
- ``passes``: one pass over one leased pool (observe -> plan -> step);
- ``observe``: what xapi says about the pool and its desired hosts;
- ``steps/``: one handler per step kind, dispatched from a table;
- ``journal``: the fenced before/after rows of every xapi mutation;
- ``status``: the pool's state, reasons and readiness at the end of a pass;
- ``dryrun``: ``poolmgr-manage pool plan``.

``Engine`` is the facade the service, ``poolmgr-manage`` and the tests use.
"""

import os
import socket
import threading
import uuid

from oslo_log import log as logging

from poolmgr.engine import context
from poolmgr.engine import dryrun
from poolmgr.engine import scheduler
from poolmgr.engine import status
from poolmgr.xenapi import session as xsession

LOG = logging.getLogger(__name__)

PassResult = status.PassResult
Plan = dryrun.Plan
LeaseLost = context.LeaseLost
Stopping = context.Stopping


class Engine:
    """Reconciles pools: ``run_forever`` in the daemon, one pool on demand."""

    def __init__(self, conf, owner=None):
        self.conf = conf
        self.owner = owner or "%s:%d:%s" % (socket.gethostname(), os.getpid(),
                                            uuid.uuid4().hex[:6])
        self.sessions = xsession.SessionCache(conf)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.scheduler = scheduler.Scheduler(conf, self.owner, self.sessions,
                                             self._stopping, self._wake)

    def wake(self):
        """Look for due pools now rather than at the next poll."""
        self._wake.set()

    def stop(self):
        """Stop claiming; passes finish the step in flight and release."""
        self._stopping.set()
        self._wake.set()

    def run_forever(self, stop_event=None):
        self.scheduler.run_forever(stop_event or threading.Event())
        self.sessions.close()
        LOG.info("Reconciler %s stopped", self.owner)

    def reconcile_pool(self, aggregate_id, progress=None):
        """One full pass on one pool, to convergence or a blocking error.

        Waits (up to two lease times) for another holder's lease; returns a
        ``PassResult`` (``converged`` tells whether the pool matches).
        """
        generation, refused = self.scheduler.acquire_waiting(aggregate_id)
        if generation is None:
            return refused
        return self.scheduler.leased_pass(aggregate_id, generation, progress)

    def plan_pool(self, aggregate_id):
        """Observe xapi now; return what a pass would do. Mutates nothing."""
        return dryrun.plan_pool(self.conf, self.sessions, aggregate_id)
