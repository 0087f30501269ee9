"""poolmgr-demo: the whole flow on embedded defaults, in one command.

A simulated XenServer (four hosts on loopback), a SQLite database in a
temporary folder and oslo.messaging's in-process ``fake://`` bus stand in
for the real servers; everything else is production code: Nova-format
notifications from ``poolmgr.simulator.fakenova``, the intake's listener from
``poolmgr.notifications``, the engine from ``poolmgr.engine`` and the
tables of ``poolmgr-manage``.
"""

import argparse
import os
import sys
import tempfile
import threading
import time

import oslo_messaging
from oslo_log import log as logging
import XenAPI

from poolmgr import bootstrap
from poolmgr.cmd import demo_nova
from poolmgr.cmd import views
from poolmgr.db import api as db_api
from poolmgr.db import compute_vms
from poolmgr.db import migration
from poolmgr import engine as pool_engine
from poolmgr.simulator import fakenova
from poolmgr import intake
from poolmgr.simulator import Simulator

DEMO_PASSWORD = "demo-only-password"


class Demo:
    def __init__(self, args, workdir, out=sys.stdout):
        self.args = args
        self.workdir = workdir
        self.out = out
        self.started = time.monotonic()
        self.sim = None
        self.listener = None
        self.engine = None
        self.engine_thread = None
        self.stop_event = threading.Event()
        self._printed_ops = set()
        self._printed_notes = set()

    # -- output ---------------------------------------------------------------

    def say(self, text):
        elapsed = time.monotonic() - self.started
        print("[%5.1fs] %s" % (elapsed, text), file=self.out, flush=True)

    def _print_new_activity(self):
        for note in reversed(db_api.list_notifications(limit=200)):
            if note["message_id"] in self._printed_notes:
                continue
            self._printed_notes.add(note["message_id"])
            if note["outcome"] in (db_api.APPLIED, db_api.REJECTED):
                self.say("  intake  %-32s -> %s" % (note["event_type"],
                                                    note["outcome"]))
        for op in reversed(db_api.list_operations(limit=200)):
            key = (op["id"], op["status"])
            if key in self._printed_ops:
                continue
            self._printed_ops.add(key)
            self.say("  engine  %s" % views.progress_line(op))

    def wait_for(self, what, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._print_new_activity()
            if predicate():
                self._print_new_activity()
                return True
            time.sleep(0.1)
        self._print_new_activity()
        self.say("gave up waiting for %s after %ds" % (what, timeout))
        return False

    # -- set-up ---------------------------------------------------------------

    def build_conf(self):
        conf = bootstrap.build_conf()
        conf([], project="poolmgr", default_config_files=[])
        db_path = os.path.join(self.workdir, "poolmgr.sqlite")
        conf.set_override("connection", "sqlite:///%s" % db_path,
                          group="database")
        conf.set_override("transport_url", "fake://")
        conf.set_override("connection_password", DEMO_PASSWORD,
                          group="xenserver")
        conf.set_override("poll_interval", 0.2, group="reconciler")
        conf.set_override("retry_initial_backoff", 0.5, group="reconciler")
        conf.set_override("retry_max_backoff", 5, group="reconciler")
        conf.set_override("join_timeout", 60, group="xenserver")
        conf.set_override("eject_timeout", 60, group="xenserver")
        conf.set_override("call_timeout", 15, group="xenserver")
        conf.set_override("requeue_delay", 0.1, group="notifications")
        # NOTE(demo): the story removes a host; with a compute VM the eject
        # is refused unless poolmgr may shut it down (and eject destroys it).
        conf.set_override("eject_compute_vm", "shutdown", group="xenserver")
        logging.set_defaults(default_log_levels=bootstrap._DEFAULT_LOG_LEVELS +
                             ["poolmgr=WARN"])
        conf.set_override("debug", self.args.debug)
        logging.setup(conf, "poolmgr-demo")
        return conf

    def simulator_options(self):
        """More Simulator arguments (a scenario's delays)."""
        return {}

    def start(self):
        args = self.args
        self.say("starting a simulated XenServer: %d standalone hosts"
                 % args.hosts)
        self.sim = Simulator(hosts=args.hosts, port=0,
                             address_base=args.address_base,
                             username="root", password=DEMO_PASSWORD,
                             join_delay=args.join_delay,
                             eject_delay=args.eject_delay,
                             compute_vms=not args.independent_compute,
                             **self.simulator_options())
        self.sim.start()
        self.say("topology: %s" % (
            "independent compute (no compute VM on the hosts)"
            if args.independent_compute else "classic: nova-compute runs in "
            "a VM on each host it manages (nova-compute-<host>)"))
        for host in self.sim.hosts:
            self.say("  %s  uuid %s  %s" % (host["name_label"], host["uuid"],
                                            host["url"]))
        conf = self.conf = self.build_conf()
        db_api.configure(conf)
        migration.upgrade()
        self.say("database: SQLite at %s, schema %s"
                 % (conf.database.connection[len("sqlite:///"):],
                    migration.version()))
        self.computes = []
        for i, host in enumerate(self.sim.hosts, 1):
            compute = "compute%d" % i
            db_api.register_host(compute, host["url"])
            if host.get("compute_vm_uuid"):
                # poolmgr-manage host register ... --compute-vm UUID
                compute_vms.set_compute_vm(compute, host["compute_vm_uuid"])
                self.say("  %s: compute VM nova-compute-%s %s" % (
                    compute, host["name_label"], host["compute_vm_uuid"]))
            self.computes.append(compute)
        self.say("registered %s -> %s" % (", ".join(self.computes), ", ".join(
            h["name_label"] for h in self.sim.hosts)))

        self.transport = oslo_messaging.get_notification_transport(
            conf, url="fake://")
        self.listener = intake.build_listener(self.transport, conf)
        self.listener.start()
        self.engine = pool_engine.Engine(conf, owner="demo")
        self.engine_thread = threading.Thread(
            target=self.engine.run_forever, args=(self.stop_event,),
            name="reconciler", daemon=True)
        self.engine_thread.start()
        self.say("intake listening on fake://, exchange nova, queue poolmgr;"
                 " reconciler running")
        self.nova = fakenova.FakeNova(self.transport,
                                      publisher_host="demo-api")
        # The demo's [nova]: the desired-state sync and the reflection of
        # each pool's state into its aggregate, on the fake's API.
        from poolmgr.nova import sync as novasync
        conf.set_override("reflect_interval", 0.2, group="nova")
        self.nova_thread = threading.Thread(
            target=novasync.Loop(conf, client=demo_nova.DemoClient(
                self.nova)).run, args=(self.stop_event,), name="nova-sync",
            daemon=True)
        self.nova_thread.start()
        self.say("Nova API sync and reflection running (on the fake Nova)")

    def stop(self):
        self.stop_event.set()
        if self.engine is not None:
            self.engine.stop()
        if self.engine_thread is not None:
            self.engine_thread.join(timeout=30)
        if getattr(self, "nova_thread", None) is not None:
            self.nova_thread.join(timeout=30)
        if self.listener is not None:
            self.listener.stop()
            self.listener.wait()
        if self.sim is not None:
            self.sim.stop()
        db_api.dispose()

    # -- the story ------------------------------------------------------------

    def pool(self, agg_id):
        agg = db_api.get_aggregate(agg_id)
        return views.pool_view(agg, *db_api.pool_rows(agg_id)) if agg else None

    def converged(self, agg_id, hosts):
        pool = self.pool(agg_id)
        if pool is None or pool["state"] != db_api.POOL_ACTIVE:
            return False
        states = {m["host"]: m["state"] for m in pool["members"]}
        active = {h for h, s in states.items() if s == db_api.MEMBER_ACTIVE}
        return active == set(hosts) and pool["live_migration_ready"]

    def create_shared_sr(self, host):
        session = XenAPI.Session(host["url"])
        session.xenapi.login_with_password("root", DEMO_PASSWORD, "1.0",
                                           "poolmgr-demo")
        try:
            host_ref = session.xenapi.host.get_by_uuid(host["uuid"])
            session.xenapi.SR.create(
                host_ref, {"server": "nfs.demo.example",
                           "serverpath": "/export/pool-a"},
                "0", "NFS pool-a", "shared storage for live migration",
                "nfs", "user", True, {})
        finally:
            session.xenapi.session.logout()

    def print_downtimes(self):
        """Each compute node's downtime for its join (compute VM topology),
        as stored on the journal row of the start that brought it back."""
        if self.args.independent_compute:
            return
        starts = [op for op in db_api.list_operations(
            limit=1000, kind="compute_vm_start")
            if op["downtime_s"] is not None]
        for op in sorted(starts, key=lambda o: o["id"]):
            self.say("compute node %s was down %.1f s for its join (compute "
                     "VM shut down -> running again)" % (op["host"],
                                                         op["downtime_s"]))

    def run(self):
        nova = self.nova
        first, others = self.computes[0], self.computes[1:4]
        self.say("nova: aggregate create pool-a")
        agg = nova.create_aggregate("pool-a", availability_zone="az1")
        self.say("nova: aggregate set --property hypervisor_pool=true pool-a")
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
        self.say("operator: create a shared NFS SR on %s"
                 % self.sim.hosts[0]["name_label"])
        self.create_shared_sr(self.sim.hosts[0])
        self.say("nova: aggregate add host pool-a %s (becomes master)" % first)
        nova.add_host(agg, first)
        ok = self.wait_for("the master", lambda: self.converged(agg, [first]))
        for host in others:
            self.say("nova: aggregate add host pool-a %s" % host)
            nova.add_host(agg, host)
        members = [first] + others
        ok = ok and self.wait_for(
            "the pool to form", lambda: self.converged(agg, members),
            timeout=self.args.timeout)
        leaving = others[-1]
        self.say("nova: aggregate remove host pool-a %s" % leaving)
        nova.remove_host(agg, leaving)
        members.remove(leaving)
        ok = ok and self.wait_for(
            "the host to leave", lambda: self.converged(agg, members),
            timeout=self.args.timeout)
        ok = ok and self.wait_for(
            "the pool's state in Nova", lambda: self.nova.aggregates[agg][
                "metadata"].get("operational_state") == "active"
            and all(m in self.nova.aggregates[agg]["metadata"]
                    for m in members))
        self.say("nova: aggregate show pool-a: its metadata (poolmgr keeps "
                 "operational_state, master_compute, <host> = XenServer "
                 "uuid per member)")
        for key, value in sorted(self.nova.aggregates[agg][
                "metadata"].items()):
            self.say("  %s = %s" % (key, value))
        print(file=self.out)
        pools = views.all_pool_views(db_api.all_pool_rows())
        print(views.pool_list_table(pools), file=self.out)
        print(file=self.out)
        print(views.pool_show_text(self.pool(agg)), file=self.out)
        print(file=self.out)
        self.print_downtimes()
        elapsed = time.monotonic() - self.started
        if ok:
            self.say("done: pool-a is active with %d members and ready for "
                     "live migration (%.1fs)" % (len(members), elapsed))
            return 0
        self.say("the demo did not converge; see the table above")
        return 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="poolmgr-demo",
        description="Run poolmgr end to end on embedded defaults: a "
                    "simulated XenServer, SQLite and an in-process bus.")
    parser.add_argument("--hosts", type=int, default=4,
                        help=argparse.SUPPRESS)
    parser.add_argument("--join-delay", type=float, default=1.0,
                        help="seconds a simulated host restarts after "
                             "pool.join (real xapi: about 10)")
    parser.add_argument("--eject-delay", type=float, default=1.0,
                        help="seconds a simulated host restarts after "
                             "pool.eject")
    parser.add_argument("--address-base", type=int, default=10,
                        help="simulated host i listens on 127.0.0.(BASE+i)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for each convergence")
    parser.add_argument("--debug", action="store_true",
                        help="log poolmgr at DEBUG")
    parser.add_argument("--independent-compute", action="store_true",
                        help="hosts without a compute VM (nova-compute runs "
                             "elsewhere); by default each host runs its "
                             "nova-compute in a VM, which every join shuts "
                             "down and starts again")
    parser.add_argument("--scenario",
                        choices=("pool", "maintenance", "master-failure"),
                        default="pool",
                        help="pool: a pool forms, a host leaves; "
                             "maintenance: a drain and a rolling reboot; "
                             "master-failure: a master dies, a person "
                             "promotes a member")
    return parser


def _demo_class(args):
    """The Demo of ``--scenario`` (imported here: each subclasses Demo)."""
    if args.scenario == "master-failure":
        from poolmgr.cmd import demo_master
        return demo_master.MasterFailureDemo
    if args.scenario == "maintenance":
        from poolmgr.cmd import demo_maintenance
        return demo_maintenance.MaintenanceDemo
    return Demo


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.join_delay < 0 or args.eject_delay < 0 or args.timeout <= 0:
        build_parser().error("delays must be >= 0 and the timeout > 0")
    if not 0 < args.address_base < 250:
        build_parser().error("--address-base must be between 1 and 249")
    with tempfile.TemporaryDirectory(prefix="poolmgr-demo-") as workdir:
        demo = _demo_class(args)(args, workdir)
        try:
            demo.start()
            return demo.run()
        except KeyboardInterrupt:
            return 1
        finally:
            demo.stop()


if __name__ == "__main__":
    sys.exit(main())
