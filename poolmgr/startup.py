"""The daemon's start-up order: nothing Nova changes while it starts is lost.

Two paths bring Nova's aggregates into the mirror: the notifications (the
intake) and the API listing (the Nova API sync, poolmgr.nova.sync). A change
Nova makes is seen by the notifications only if the intake's queue is bound
to Nova's exchange when Nova publishes it, and by a listing only if the
listing is asked for after Nova committed it. So the first listing after
start must be asked for after the queue is bound: then every change is
committed either before the listing (the listing has it) or after the
binding (its notification is in the queue). The other way round, a change
made between the listing and the binding is seen by neither path until the
next ``[nova] sync_interval``.

``IntakeBound`` carries "the queue is bound" from the intake workers to the
Nova API sync worker; ``wait_for_intake`` is the sync's side of it.
"""

import multiprocessing
import time

# Seconds between two looks at the stop event while waiting for the bind.
_SLICE = 0.2


class IntakeBound:
    """Set by the first intake worker of this daemon whose queue is bound.

    NOTE(bound-signal): a process-shared event made by the daemon's master
    before it forks any worker, not a row in the database. It lives in this
    master's memory and dies with it, so a "bound" left by a previous run
    (or by another daemon on the same database) can never count: every
    start begins unset. A worker respawned by cotyledon inherits it: an
    intake worker sets it again (harmless), a Nova API sync worker sees it
    set and syncs at once, which is right since the queue was bound in
    this run. One worker's binding is enough however many there are: every
    intake worker declares and binds the same queue (``[notifications]
    pool``) to the same topics, and the broker keeps what is published to
    it from the moment it is bound, whether or not a consumer is attached.
    """

    def __init__(self, context=None):
        # NOTE(context): cotyledon forks (or spawns) its workers through
        # the ServiceManager's multiprocessing context; an event of that
        # context is inherited (or passed) with the service's arguments.
        self._event = (context or multiprocessing).Event()

    def report(self):
        """The intake's queue is bound: declared on the broker, with every
        configured topic routed to it (oslo.messaging's listener start
        returns only then)."""
        self._event.set()

    def is_set(self):
        return self._event.is_set()

    def wait(self, timeout):
        return self._event.wait(timeout)


def wait_for_intake(bound, timeout, stopping):
    """Wait up to ``timeout`` seconds for ``bound``; True once it is set.

    False when the time ran out or ``stopping`` was set first.
    """
    deadline = time.monotonic() + timeout
    while not stopping.is_set():
        left = deadline - time.monotonic()
        if bound.wait(min(max(left, 0.0), _SLICE)):
            return True
        if left <= 0:
            return False
    return False
