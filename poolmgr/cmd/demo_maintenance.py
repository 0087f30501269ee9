"""poolmgr-demo --scenario maintenance: a drain and a rolling reboot.

The same embedded world as the default scenario (poolmgr.cmd.demo): a
pool of three hosts forms, guests run on one of them; the operator drains
it (a VM on local storage blocks it first, shown before anything moves),
puts it back, and reboots the pool host by host, master first. Requests go
in as ``poolmgr-manage host drain|undrain`` and ``pool rolling-reboot``
write them; the engine running in this process carries them out.
"""

import time

import XenAPI

from poolmgr.cmd import demo
from poolmgr.cmd import views
from poolmgr.db import api as db_api
from poolmgr.engine import maintenance

# NOTE(fast): seconds, so the story fits in 20 s; a real reboot is minutes.
JOIN_DELAY = 0.3
REBOOT_DELAY = 0.5
MIGRATE_DELAY = 0.1


class MaintenanceDemo(demo.Demo):
    def build_conf(self):
        conf = super().build_conf()
        conf.set_override("wait_poll_interval", 0.2, group="reconciler")
        conf.set_override("reboot_timeout", 30, group="xenserver")
        return conf

    def simulator_options(self):
        return {"reboot_delay": REBOOT_DELAY, "migrate_delay": MIGRATE_DELAY}

    def start(self):
        self.args.hosts = 3
        self.args.join_delay = min(self.args.join_delay, JOIN_DELAY)
        super().start()

    def _request(self, agg, kind, hosts, line):
        self.say("operator: %s" % line)
        op = db_api.start_maintenance(agg, kind, hosts,
                                      maintenance.first_phase(kind),
                                      current_host=hosts[0])
        db_api.mark_due(agg)
        self.engine.wake()
        seen = None

        def ended():
            row = db_api.get_maintenance(op["id"])
            nonlocal seen
            if (row["current_host"], row["phase"]) != seen and \
                    row["status"] == db_api.MAINT_RUNNING:
                seen = (row["current_host"], row["phase"])
                self.say("  pool show: %s" % maintenance.describe(row))
            return row["status"] != db_api.MAINT_RUNNING
        self.wait_for(line, ended, timeout=self.args.timeout)
        row = db_api.get_maintenance(op["id"])
        self.say("  -> %s" % maintenance.describe(row))
        return row

    def _shut_down(self, vm_uuid):
        master = self.sim.hosts[0]
        session = XenAPI.Session(master["url"])
        session.xenapi.login_with_password("root", demo.DEMO_PASSWORD, "1.0",
                                           "poolmgr-demo")
        try:
            session.xenapi.VM.hard_shutdown(
                session.xenapi.VM.get_by_uuid(vm_uuid))
        finally:
            session.xenapi.session.logout()

    def run(self):
        nova, members = self.nova, self.computes[:3]
        self.say("nova: aggregate create pool-m, hypervisor_pool=true, "
                 "hosts %s" % ", ".join(members))
        agg = nova.create_aggregate("pool-m")
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
        self.create_shared_sr(self.sim.hosts[0])
        for host in members:
            nova.add_host(agg, host)
        if not self.wait_for("the pool to form",
                             lambda: self.converged(agg, members),
                             timeout=self.args.timeout):
            return 1
        target, xs = members[1], self.sim.hosts[1]["name_label"]
        guests = [self.sim.create_running_vm(xs, "guest-%d" % i, 2048,
                                             "NFS pool-a") for i in range(3)]
        local = self.sim.create_running_vm(xs, "scratch", 1024,
                                           "Local storage")
        self.say("guests on %s: guest-0..2 (shared SR), scratch (local SR)"
                 % target)
        row = self._request(agg, db_api.MAINT_DRAIN, [target],
                            "poolmgr-manage host drain %s --wait" % target)
        ok = row["status"] == db_api.MAINT_FAILED and all(
            self.sim.vm_state(g)["resident_on"] == xs for g in guests)
        self.say("operator: shut down scratch (its disk is on local "
                 "storage), drain again")
        self._shut_down(local)
        row = self._request(agg, db_api.MAINT_DRAIN, [target],
                            "poolmgr-manage host drain %s --wait" % target)
        ok = ok and row["status"] == db_api.MAINT_SUCCEEDED
        self.say("guests now on: %s" % ", ".join(
            self.sim.vm_state(g)["resident_on"] for g in guests))
        self._show(agg)
        row = self._request(agg, db_api.MAINT_UNDRAIN, [target],
                            "poolmgr-manage host undrain %s" % target)
        ok = ok and row["status"] == db_api.MAINT_SUCCEEDED
        master = db_api.get_pool(agg)["master"]
        row = self._request(
            agg, db_api.MAINT_ROLLING_REBOOT,
            [master] + [m for m in members if m != master],
            "poolmgr-manage pool rolling-reboot pool-m --wait")
        ok = ok and row["status"] == db_api.MAINT_SUCCEEDED
        ok = ok and self.wait_for("the pool to be ready again",
                                  lambda: self.converged(agg, members),
                                  timeout=self.args.timeout)
        self.say("reboots: %s" % ", ".join(
            "%s %d" % (h["name_label"], self.sim.boot_count(h["name_label"]))
            for h in self.sim.hosts))
        self._show(agg)
        elapsed = time.monotonic() - self.started
        if ok:
            self.say("done: drained, undrained and rebooted host by host; "
                     "pool-m is active and ready (%.1fs)" % elapsed)
            return 0
        self.say("the maintenance demo did not go as told; see above")
        return 1

    def _show(self, agg):
        print(file=self.out)
        print(views.pool_show_text(views.pool_view(
            db_api.get_aggregate(agg), *db_api.pool_rows(agg),
            db_api.latest_maintenance([agg]).get(agg))), file=self.out)
        print(file=self.out)
