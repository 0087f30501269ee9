"""What one pass over one pool carries: the lease, the cause, the session.

Every room of the engine takes a ``PassContext``: the step handlers, the
journal and the status writer read the configuration, the session cache
and the lease from it instead of reaching back into the engine.
"""

import dataclasses
import time

from oslo_utils import timeutils

from poolmgr.db import api as db_api
from poolmgr import events
from poolmgr import planner


class LeaseLost(Exception):
    """The pool's lease is no longer ours: stop before touching xapi."""


class Stopping(Exception):
    """The engine was asked to stop between steps."""


class WaitTimeout(Exception):
    """A wait (join -> live, eject -> standalone, hand-over) ran out."""

    def __init__(self, host, reason):
        self.host = host
        super().__init__(reason)


def now():
    return timeutils.utcnow()


def desired_of(agg):
    """The planner's Desired for an aggregate row (None when absent)."""
    if agg is None:
        return None
    managed = (not agg["deleted"]) and events.POOL_FLAG in (agg["metadata"]
                                                             or {})
    return planner.Desired(aggregate_id=agg["id"], name=agg["name"] or "",
                           hosts=tuple(agg["hosts"] or ()), managed=managed)


@dataclasses.dataclass
class PassContext:
    aggregate_id: int
    generation: int
    conf: object = None
    sessions: object = None
    owner: str = None
    stopping: object = None      # threading.Event: the engine is stopping
    progress: object = None
    cause: str = None
    master_session: object = None
    inventory: dict = dataclasses.field(default_factory=dict)
    steps_executed: int = 0
    last_renew: float = 0.0
    pool_error: tuple = None

    def fence(self):
        """Renew the lease; refuse to touch xapi if it is no longer ours."""
        if not db_api.renew_lease(self.aggregate_id, self.owner,
                                  self.generation,
                                  self.conf.reconciler.lease_time):
            raise LeaseLost()
        self.last_renew = time.monotonic()

    def check_running(self):
        if self.stopping is not None and self.stopping.is_set():
            raise Stopping()
        if time.monotonic() - self.last_renew > \
                self.conf.reconciler.lease_time / 3.0:
            self.fence()

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while True:
            self.check_running()
            left = end - time.monotonic()
            if left <= 0:
                return
            self.stopping.wait(min(left, max(
                0.05, self.conf.reconciler.lease_time / 4.0)))
