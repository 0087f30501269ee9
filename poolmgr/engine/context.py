"""What one pass over one pool carries: the lease, the cause, the session.

Every room of the engine takes a ``PassContext``: the step handlers, the
journal and the status writer read the configuration, the session cache
and the lease from it instead of reaching back into the engine.
"""

import contextlib
import dataclasses
import time

from oslo_utils import timeutils
import tenacity

from poolmgr.db import api as db_api
from poolmgr import events
from poolmgr.plan import planner
from poolmgr.xenapi import operations


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


def backoff(conf, attempt):
    """Seconds before the next try after ``attempt`` failures."""
    wait = tenacity.wait_exponential(
        multiplier=conf.reconciler.retry_initial_backoff,
        max=conf.reconciler.retry_max_backoff)
    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = max(1, attempt)
    return wait(state)


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
    master_url: str = None       # the inventory URL master_session began at
    inventory: dict = dataclasses.field(default_factory=dict)
    steps_executed: int = 0
    last_renew: float = 0.0
    stepped_at: float = None     # monotonic: the last xapi mutation returned
    pool_error: tuple = None
    pool_row: dict = None
    feeds: object = None         # observe.FeedCache: event.from per pool
    long_polls: object = None    # threading.Semaphore bounding long-polls
    # Pool columns written with the lease's release (NOTE(release-write)
    # in engine.waits).
    release_fields: dict = dataclasses.field(default_factory=dict)
    # The hosts rows the pass read with its pool (NOTE(one-read) in
    # db.passread): ({compute host: row}, the names asked about).
    hosts_read: tuple = None
    # A look wrote a member (engine.waits._problem): read them again.
    members_written: bool = False
    # (pool row, member rows) when the pass wrote neither
    # (NOTE(settled-rows) in engine.passes).
    settled_rows: tuple = None
    # (session, snapshot) of the look that ended the wait (NOTE(fresh-look)).
    fresh_read: tuple = None
    # Member writes held for the join of this pass (NOTE(members-write) in
    # db.pools); None: each is written at once.
    member_writes: list = None

    def write_member(self, host, **fields):
        """db_api.upsert_member, or held for the pass's join."""
        if self.member_writes is None:
            db_api.upsert_member(self.aggregate_id, host, **fields)
        else:
            self.member_writes.append((host, fields))

    def write_members(self, host, **fields):
        """This member's write with the ones held, in one statement."""
        held, self.member_writes = self.member_writes or [], None
        db_api.write_members(self.aggregate_id, held + [(host, fields)])

    def flush_members(self):
        held, self.member_writes = self.member_writes, None
        if held:
            db_api.write_members(self.aggregate_id, held)

    def read_master(self, session, timeout=0.0):
        """The pool through its master; ``timeout`` > 0 long-polls.

        Through the pool's event.from feed when the engine keeps one (only
        the changes since the last read travel), else a full read.
        """
        if self.feeds is None:
            return operations.read_pool(session)
        fresh, self.fresh_read = self.fresh_read, None
        if fresh is not None and fresh[0] is session and not timeout:
            # NOTE(fresh-look): the look that ended this pass's wait read
            # the master through this session a moment ago; the pass
            # observes from that snapshot instead of asking again (one
            # event.from per join fewer: the look long-polled until the
            # change showed, so nothing newer is expected).
            return fresh[1]
        return self.feeds.get(self.aggregate_id).read(session, timeout)

    @contextlib.contextmanager
    def long_poll(self):
        """Seconds this look may wait on the master: wait_long_poll, or 0
        when every long-poll slot is taken."""
        # NOTE(long-poll): a long-poll holds a worker thread; at most half
        # of them may hold one, the others look without waiting.
        held = self.long_polls is None or self.long_polls.acquire(
            blocking=False)
        # NOTE(lease): a long-poll holds the lease; it may use at most half
        # of what is left of it, so the pass can still renew it and write
        # what it saw (wait_long_poll >= lease_time lost every lease).
        left = self.conf.reconciler.lease_time - (
            time.monotonic() - (self.last_renew or time.monotonic()))
        budget = max(0.0, min(self.conf.reconciler.wait_long_poll,
                              left / 2.0))
        try:
            yield budget if held else 0.0
        finally:
            if held and self.long_polls is not None:
                self.long_polls.release()

    def fence(self, doing=None):
        """Renew the lease; refuse to touch xapi if it is no longer ours.

        ``doing``: the xapi call about to be made (a mutation's fence).
        NOTE(in-flight): it is the pool's reason while the call is in
        flight, written by the renewal's UPDATE. Between a wait that ended
        and the end of the next pass the reasons were the last wait's
        ("waiting for cmp-2 to be live") while cmp-2 was active and
        cmp-3's pool.join was in flight, seconds on a real xapi.
        """
        fields = {"reasons": ["in progress: %s" % doing]} if doing else None
        if not db_api.renew_lease(self.aggregate_id, self.owner,
                                  self.generation,
                                  self.conf.reconciler.lease_time,
                                  fields=fields):
            raise LeaseLost()
        self.last_renew = time.monotonic()

    def check_running(self):
        if self.stopping is not None and self.stopping.is_set():
            raise Stopping()
        if time.monotonic() - self.last_renew > \
                self.conf.reconciler.lease_time / 3.0:
            self.fence()
