"""A dead master: its xapi stops answering, a member is promoted, it returns.

What xapi does (reference/operations.md §1, xen-api ``xapi_pool.ml``,
``xapi.ml``): a host whose xapi is gone refuses connections while its
domains keep running; its members answer a normal login with
``HOST_IS_SLAVE [its address]`` and serve
``session.slave_local_login_with_password`` for the emergency calls;
``pool.emergency_transition_to_master`` on a member makes it master of its
local copy of the database; ``pool.recover_slaves`` points every other
host it reaches at it. An old master that comes back and cannot reach the
new one still believes it is master of the pool as it last knew it.

``FailoverControls`` is a mixin of ``poolmgr.simulator.Simulator``: its
methods are also the ``sim.*`` calls named in ``CONTROL``.
"""

import copy

from poolmgr.simulator.model import PoolDB


def fork_stale_view(db, old_master):
    """Give ``old_master`` its own copy of ``db`` as it last knew it.

    NOTE(split-brain): the simulator keeps one database per pool, shared
    by its hosts; xapi keeps one per host. When a member is promoted while
    the master's xapi is dead, the two views part: the old master keeps
    the pool with itself as master and every old member listed (it demotes
    itself only if it reaches the new master at start-up, §1.3; the
    simulator plays the partition, the case poolmgr must survive).
    """
    stale = PoolDB(db.world)
    stale.tables = copy.deepcopy(db.tables)
    stale.generation = db.generation
    stale.created = dict(db.created)
    stale.modified = dict(db.modified)
    old_master.db = stale
    return stale


class FailoverControls:
    """sim.kill_xapi, sim.revive_xapi, sim.set_ha_enabled."""

    CONTROL = ("kill_xapi", "revive_xapi", "set_ha_enabled")

    def kill_xapi(self, host):
        """``host``'s xapi stops answering (connection refused); its VMs
        keep running and its members keep pointing at it."""
        h = self.world.host(host)
        with self.world.lock:
            h.xapi_alive = False
        self._endpoints[h.name].sync()

    def revive_xapi(self, host):
        """``host``'s xapi starts again, with the role and the database it
        had (its sessions are gone: xapi restarted)."""
        h = self.world.host(host)
        with self.world.lock:
            h.xapi_alive = True
            h.boot_id += 1
            h.emergency = False
        self._endpoints[h.name].sync()

    def set_ha_enabled(self, host, enabled=True):
        """xapi HA armed (or not) on ``host``'s pool (``set_ha``'s name in
        the failover scenarios)."""
        self.set_ha(host, enabled)
