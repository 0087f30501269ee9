"""poolmgr-demo --scenario master-failure: a master dies, a person promotes.

The demo's world (poolmgr.cmd.demo): a pool of three forms; the master's
xapi is killed (its VMs keep running, its members point at it); poolmgr
says the master does not answer, then ``master_lost`` after
``[xenserver] master_dead_after``; an operator confirms the master is
powered off (``poolmgr-manage pool promote pool-a
--confirm-master-fenced``); poolmgr promotes the first member that
answers in two journalled steps and verifies the others; the old master
comes back still believing it is master and is not trusted.
"""

import time

from poolmgr.cmd import demo
from poolmgr.cmd import views
from poolmgr.db import api as db_api

# Seconds the master may not answer before the pool is master_lost.
DEAD_AFTER = 2.0


class MasterFailureDemo(demo.Demo):

    def build_conf(self):
        conf = super().build_conf()
        conf.set_override("master_dead_after", DEAD_AFTER, group="xenserver")
        conf.set_override("master_failover", "manual", group="xenserver")
        # NOTE(demo-look): the demo's pool is looked at every second, so
        # the dead master is seen at once (a deployment: resync_interval).
        conf.set_override("resync_interval", 1, group="reconciler")
        conf.set_override("retry_max_backoff", 1, group="reconciler")
        conf.set_override("call_timeout", 5, group="xenserver")
        return conf

    def _reasons(self, agg):
        for reason in self.pool(agg)["reasons"]:
            self.say("    reason: %s" % reason)

    def _state_is(self, agg, state):
        return self.pool(agg)["state"] == state

    def run(self):
        nova = self.nova
        members = self.computes[:3]
        master, successor = members[0], members[1]
        master_sim = self.sim.hosts[0]["name_label"]
        self.say("nova: aggregate create pool-a, hypervisor_pool=true, add "
                 "%s" % ", ".join(members))
        agg = nova.create_aggregate("pool-a", availability_zone="az1")
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
        self.create_shared_sr(self.sim.hosts[0])
        for host in members:
            nova.add_host(agg, host)
        ok = self.wait_for("the pool to form",
                           lambda: self.converged(agg, members),
                           timeout=self.args.timeout)
        vm = self.sim.create_running_vm(master_sim, "guest-on-master")
        time.sleep(1.2)     # a pass reads it on the master
        self.say("xapi of %s (%s) dies: connection refused; its VMs keep "
                 "running (guest-on-master %s)" % (master, master_sim, vm))
        self.sim.kill_xapi(master_sim)
        ok = ok and self.wait_for(
            "poolmgr to see it", lambda: any(
                "does not answer" in r for r in self.pool(agg)["reasons"]))
        self.say("pool-a: %s" % self.pool(agg)["state"])
        self._reasons(agg)
        ok = ok and self.wait_for(
            "master_lost", lambda: self._state_is(agg,
                                                  db_api.POOL_MASTER_LOST))
        self.say("pool-a: %s (after [xenserver] master_dead_after = %.0f s; "
                 "master_failover = manual: nothing is promoted)" % (
                     self.pool(agg)["state"], DEAD_AFTER))
        self._reasons(agg)
        self.say("operator (has powered %s off): poolmgr-manage pool promote "
                 "pool-a --confirm-master-fenced" % master)
        db_api.request_promotion(agg)
        ok = ok and self.wait_for(
            "the promotion", lambda: (self.pool(agg)["failover"] or {}).get(
                "promoted_at") is not None and self.pool(agg)["master"]
            == successor)
        record = self.pool(agg)["failover"] or {}
        self.say("pool-a: master %s; recovered %s; verified %s; not naming "
                 "it: %s" % (self.pool(agg)["master"],
                             ", ".join(record.get("recovered") or ()),
                             ", ".join(record.get("verified") or ()),
                             ", ".join(record.get("stragglers") or ())
                             or "none"))
        self.say("%s comes back, still believing it is master of its stale "
                 "copy of the pool" % master)
        self.sim.revive_xapi(master_sim)
        ok = ok and self.wait_for(
            "the old master to be seen", lambda: any(
                "stale copy" in r for r in self.pool(agg)["reasons"]))
        print(file=self.out)
        print(views.pool_show_text(self.pool(agg)), file=self.out)
        print(file=self.out)
        states = {m["host"]: m["state"] for m in self.pool(agg)["members"]}
        ok = ok and states.get(master) == db_api.MEMBER_FENCED and \
            self.pool(agg)["master"] == successor
        if ok:
            self.say("done: %s is master of pool-a, %s is fenced (not "
                     "trusted, not joined back); the reasons say how to "
                     "re-admit it" % (successor, master))
            return 0
        self.say("the master-failure scenario did not finish; see above")
        return 1
