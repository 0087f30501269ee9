"""buildout_ratio and rss_mb: aggregates built into pools through the daemon.

The real daemon (``poolmgr --config-file F``: intake + reconciler workers,
**default** thread counts) runs as a subprocess against RabbitMQ and a
fresh MySQL database; the simulated XenServer hosts (``--join-delay 1``)
run in this process, and the first host of every pool has a shared NFS SR,
so every join includes the PBD that xapi plugs on the new member and the
readiness check. Nova's notifications (versioned and legacy) create the
aggregates flagged ``hypervisor_pool`` and add the hosts.

Two sizes: 100 aggregates x 5 hosts, and 10 x 16 (XO users join 16 hosts
into one pool).

- makespan: from the first notification to every pool ``active`` with all
  members ``active``;
- single join latency: measured in the same run, before the build-out, on
  two spare simulated hosts with a shared SR: from the pool.join call
  (XenAPI, no poolmgr) to the master listing the member live with its PBD
  plugged (event.from long-poll);
- buildout_ratio = makespan / ((hosts per pool - 1) x single join latency),
  the critical path of a pool's serial joins. Goal <= 1.1 at 10 x 16 (no
  goal at 100 x 5, where the CPU floor is above the bound on 2 cores).
- cpu_floor_s (details): the CPU seconds the daemon, this process (the
  simulator, Nova's publisher) and MariaDB used during the build, divided
  by the cores: no build on this machine ends sooner. When it is above the
  bound the ratio says as much about the machine as about poolmgr.
- buildout_efficiency = makespan / max(bound, cpu_floor_s), 100 x 5.
  Goal <= 1.15.
- sql_statements_per_join: the reconciler worker's SQL statements during
  the 100 x 5 mirror build (counted by benchmarks/sqlcount.py,
  NOTE(counted), NOTE(counted-build)) per pool.join. Goal <= 10.
- sql_statements_per_idle_pass: per pool, one resync pass of every pool
  built by the mirror build, with nothing to do. Goal <= 3.
- xapi_calls_per_join: every call the simulator received during the
  100 x 5 mirror build per pool.join; goal: what a join needs
  (xapi_calls_a_join_needs, doc/source/benchmarks.rst).
- rss_mb: peak of the daemon's processes' RSS summed (master + workers),
  sampled every 0.2 s during the 100 x 5 build-out. Goal < 150 MB. The
  details have the peak PSS (shared pages split between the processes) and
  each process's own peak, by process title.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import oslo_messaging
import psutil

import common
import sqlcount
from poolmgr.db import api as db_api
from poolmgr.simulator import fakenova
from poolmgr.plan import readiness
from poolmgr.simulator import Simulator
from poolmgr import bootstrap
from poolmgr.xenapi import operations
from poolmgr.xenapi import session as xsession

SIZES = ((100, 5), (10, 16))
SQLCOUNT = pathlib.Path(__file__).resolve().with_name("sqlcount.py")
JOIN_DELAY = 1.0
PASSWORD = "bench-xapi-secret"


def _poolmgr():
    found = pathlib.Path(sys.executable).with_name("poolmgr")
    return str(found) if found.exists() else shutil.which("poolmgr")


def _die_with_parent():
    """SIGTERM the daemon if this benchmark dies (a benchmark killed by a
    timeout left its daemon behind, busy against 500 vanished hosts)."""
    import ctypes
    import signal
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig,
                                                  signal.SIGTERM)


def _config(path, names, url):
    path.write_text(textwrap.dedent("""\
        [DEFAULT]
        transport_url = {rabbit}
        debug = false
        [database]
        connection = {db}
        [notifications]
        exchange = {exchange}
        topics = {topics}
        pool = {pool}
        [oslo_messaging_rabbit]
        amqp_durable_queues = true
        [xenserver]
        connection_username = root
        connection_password = {password}
        call_timeout = 30
        [reconciler]
        poll_interval = 0.5
        lease_time = 30
        resync_interval = 3600
        """).format(rabbit=common.RABBIT_URL, db=url,
                    exchange=names.exchange, topics=",".join(names.topics),
                    pool=names.pool, password=PASSWORD))


class RssSampler(threading.Thread):
    """Peak RSS (and PSS) of a process tree, sampled until stopped."""

    def __init__(self, pid, interval=0.2):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = self.peak_pss = self.peak_single = 0
        self.processes = 0
        self.by_title = {}      # process title -> {"rss_mb", "pss_mb"}
        self.stop_event = threading.Event()

    def sample(self):
        procs = [self.root] + self.root.children(recursive=True)
        rss = pss = single = 0
        mb = 1024.0 * 1024.0
        for proc in procs:
            try:
                info = proc.memory_full_info()
                title = " ".join(proc.cmdline())[:60]
            except (psutil.Error, OSError):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            single = max(single, info.rss)
            peak = self.by_title.setdefault(title, {"rss_mb": 0.0,
                                                    "pss_mb": 0.0})
            peak["rss_mb"] = max(peak["rss_mb"], round(info.rss / mb, 1))
            peak["pss_mb"] = max(peak["pss_mb"], round(
                getattr(info, "pss", info.rss) / mb, 1))
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_single = max(self.peak_single, single)
        self.processes = max(self.processes, len(procs))

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)


def single_join_latency():
    """Seconds from pool.join to the member live with its shared-SR PBD.

    Two spare simulated hosts, the first with a shared SR; the join is made
    with the XenAPI client directly (no poolmgr), and the master is
    followed with event.from until the new member is complete.
    """
    sim = Simulator(hosts=2, port=0, address_base=230, password=PASSWORD,
                    join_delay=JOIN_DELAY, eject_delay=JOIN_DELAY).start()
    try:
        master, joiner = sim.hosts
        sim.create_shared_sr(master["name_label"], "probe-nfs", "nfs")
        on_master = xsession.XapiSession(master["url"], "root", PASSWORD)
        on_joiner = xsession.XapiSession(joiner["url"], "root", PASSWORD,
                                         follow_master=False)
        feed = operations.PoolFeed()
        feed.read(on_master)
        on_joiner.login()
        start = time.monotonic()
        operations.join_pool(on_joiner, master["address"], "root", PASSWORD)
        while True:
            snap = feed.read(on_master, timeout=1.0)
            ref = snap.host_ref_by_uuid(joiner["uuid"])
            if ref is not None and readiness.member_complete(snap, ref):
                return time.monotonic() - start
            if time.monotonic() - start > 60:
                raise RuntimeError("the probe join did not complete")
    finally:
        sim.stop()


def _all_active(expected, hosts_per_pool):
    pools = {p["aggregate_id"]: p["state"] for p in db_api.list_pools()}
    if sum(1 for a in expected if pools.get(a) == "active") < len(expected):
        return False
    active = {}
    for member in db_api.list_all_members():
        if member["state"] == "active":
            active[member["aggregate_id"]] = active.get(
                member["aggregate_id"], 0) + 1
    return all(active.get(a, 0) == hosts_per_pool for a in expected)


def measure(aggregates=100, hosts_per_pool=5, timeout=900,
            source="notifications"):
    """One build-out. ``source``: "notifications" (Nova's, through RabbitMQ
    and the intake) or "mirror" (the whole desired state written into the
    database at once, as a Nova API sync would: the engine alone)."""
    names = common.Names("pmbench_buildout")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="pmbench-"))
    sim = None
    proc = None
    transport = None
    try:
        with common.scratch_database() as url:
            conf_file = workdir / "poolmgr.conf"
            _config(conf_file, names, url)
            latency = single_join_latency()
            t0 = time.monotonic()
            sim = Simulator(hosts=aggregates * hosts_per_pool, port=0,
                            password=PASSWORD, join_delay=JOIN_DELAY,
                            eject_delay=JOIN_DELAY).start()
            sim_start = time.monotonic() - t0
            hosts = []
            for i, host in enumerate(sim.hosts):
                name = "cmp-%04d" % i
                db_api.register_host(name, host["url"])
                hosts.append(name)
                if i % hosts_per_pool == 0:
                    # The pool's first host becomes its master: the shared
                    # SR every member must see (readiness, PBD path).
                    sim.create_shared_sr(host["name_label"],
                                         "nfs-%04d" % i, "nfs")
            log = open(workdir / "poolmgr.log", "wb")
            counts = workdir / "sql"
            counts.mkdir()
            # NOTE(counted): the daemon runs under benchmarks/sqlcount.py,
            # which counts each worker's SQL statements (a listener on
            # SQLAlchemy's engines, attached in the workers only).
            proc = subprocess.Popen([sys.executable, str(SQLCOUNT),
                                     str(counts), _poolmgr(), "--config-file",
                                     str(conf_file)], stdout=log,
                                    stderr=subprocess.STDOUT,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                    preexec_fn=_die_with_parent)
            # The build starts on a daemon that is up: its intake listens
            # and its reconciler runs (imports done, threads started).
            common.wait_for(lambda: all(
                line in (workdir / "poolmgr.log").read_bytes()
                for line in (b"listening on exchange", b"running with"))
                or proc.poll() is not None, timeout=60,
                what="the daemon to listen and its reconciler to run")
            if proc.poll() is not None:
                raise RuntimeError(
                    (workdir / "poolmgr.log").read_text()[-2000:])
            sampler = RssSampler(proc.pid)
            sampler.sample()
            idle_rss = sampler.peak_rss
            sampler.start()
            cpu_before = _cpu_seconds(proc.pid)
            conf = bootstrap.build_conf()
            conf([], project="poolmgr", default_config_files=[])
            conf.set_override("control_exchange", names.exchange)
            conf.set_override("amqp_durable_queues", True,
                              group="oslo_messaging_rabbit")
            transport = oslo_messaging.get_notification_transport(
                conf, url=common.RABBIT_URL)
            nova = fakenova.FakeNova(transport,
                                     legacy_topics=[names.legacy_topic],
                                     versioned_topics=[names.versioned_topic])
            sql_before, _ = sqlcount.reconciler(counts)
            kinds_before = sqlcount.reconciler(counts)[1]
            calls_before = len(sim.call_log)
            start = time.monotonic()
            ids = []
            if source == "mirror":
                for n in range(aggregates):
                    ids.append(1000 + n)
                    db_api.put_aggregate(
                        ids[-1], "pool-%03d" % n,
                        hosts[n * hosts_per_pool:(n + 1) * hosts_per_pool],
                        {"hypervisor_pool": "true"})
            else:
                for n in range(aggregates):
                    agg = nova.create_aggregate("pool-%03d" % n)
                    nova.set_metadata(agg, {"hypervisor_pool": "true"})
                    ids.append(agg)
                for h in range(hosts_per_pool):
                    for n, agg in enumerate(ids):
                        nova.add_host(agg, hosts[n * hosts_per_pool + h])
            published = time.monotonic() - start
            common.wait_for(lambda: _all_active(ids, hosts_per_pool),
                            timeout=timeout, interval=0.2,
                            what="every pool to be active")
            makespan = time.monotonic() - start
            cpu = {k: round(v - cpu_before.get(k, 0.0), 1)
                   for k, v in _cpu_seconds(proc.pid).items()}
            sampler.stop_event.set()
            sampler.join()
            joins = len(sim.calls("pool.join"))
            build_calls = sim.call_log[calls_before:]
            master_calls = len(build_calls)
            notifications = len(nova.sent)
            ready = sum(1 for p in db_api.list_pools()
                        if p["live_migration_ready"])
            # The workers write their counts every 0.1 s (sqlcount).
            time.sleep(3 * sqlcount.DUMP_EVERY)
            sql_after, kinds_after = sqlcount.reconciler(counts)
            idle = idle_pass(sim, counts, ids)
    finally:
        if transport is not None:
            transport.cleanup()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if sim is not None:
            sim.stop()
        names.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    bound = (hosts_per_pool - 1) * latency
    mb = 1024.0 * 1024.0
    kinds = {k: v - kinds_before.get(k, 0) for k, v in kinds_after.items()
             if v - kinds_before.get(k, 0)}
    by_method = {}
    for call in build_calls:
        by_method[call.method] = by_method.get(call.method, 0) + 1
    return {"makespan_s": round(makespan, 2),
            "sql_statements": sql_after - sql_before,
            "sql_statements_by_kind": dict(sorted(
                kinds.items(), key=lambda kv: -kv[1])),
            "xapi_calls_by_method": by_method,
            "idle_pass": idle,
            "single_join_latency_s": round(latency, 3),
            "critical_path_bound_s": round(bound, 2),
            "ratio": makespan / bound,
            "publish_s": round(published, 2),
            "notifications": notifications, "pool_join_calls": joins,
            "xapi_calls": master_calls,
            "pools_live_migration_ready": ready,
            "source": source,
            "aggregates": aggregates, "hosts_per_pool": hosts_per_pool,
            "hosts": aggregates * hosts_per_pool,
            "join_delay_s": JOIN_DELAY, "reconciler_threads": "default",
            "simulator_start_s": round(sim_start, 2),
            "peak_rss_mb": round(sampler.peak_rss / mb, 1),
            "peak_pss_mb": round(sampler.peak_pss / mb, 1),
            "peak_single_process_rss_mb": round(sampler.peak_single / mb, 1),
            "idle_rss_mb": round(idle_rss / mb, 1),
            "daemon_processes": sampler.processes,
            "by_process": sampler.by_title,
            "cpu_s_during_build": cpu,
            # NOTE(floor): the daemon, the simulator and MariaDB share this
            # machine's cores; the build cannot end before the CPU they
            # used, spread over every core, has run.
            "cpu_floor_s": round(sum(cpu.values()) / _cores(), 2),
            "cores": _cores()}


def idle_pass(sim, counts, ids):
    """Statements and xapi calls of one resync pass of every built pool.

    Every pool is made due at once (its due time set to now, as the
    resync interval's end does) and each is waited for until its pass
    wrote ``last_reconciled_at``; the reconciler's statements meanwhile
    (the passes and the poll loop's claims) are divided by the pools.
    """
    import sqlalchemy as sa
    from poolmgr.db import session as db_session
    time.sleep(1.0)     # the build's last releases and polls are counted
    marked = db_session._now()
    before, kinds_before = sqlcount.reconciler(counts)
    calls_before = len(sim.call_log)
    with db_session._writer_connection() as conn:
        conn.execute(sa.text("UPDATE pools SET due_at = :now"),
                     {"now": marked})
    common.wait_for(lambda: all(
        p["last_reconciled_at"] is not None
        and p["last_reconciled_at"] >= marked for p in db_api.list_pools()
        if p["aggregate_id"] in ids), timeout=120, interval=0.2,
        what="every pool's resync pass")
    time.sleep(3 * sqlcount.DUMP_EVERY)
    after, kinds_after = sqlcount.reconciler(counts)
    calls = sim.call_log[calls_before:]
    pools = len(ids)
    return {"pools": pools,
            "sql_statements": after - before,
            "sql_statements_per_pool": round((after - before) / pools, 2),
            "sql_statements_by_kind": {
                k: v - kinds_before.get(k, 0) for k, v in kinds_after.items()
                if v - kinds_before.get(k, 0)},
            "xapi_calls_per_pool": round(len(calls) / pools, 2)}


def _cores():
    return len(os.sched_getaffinity(0))


def _cpu_seconds(daemon_pid):
    """CPU seconds so far: each daemon process, this process (the
    simulator and Nova's publisher), MariaDB."""
    found = {}
    root = psutil.Process(daemon_pid)
    procs = [("daemon " + " ".join(p.cmdline())[9:40], p)
             for p in [root] + root.children(recursive=True)]
    procs.append(("benchmark (simulator, publisher)", psutil.Process()))
    procs += [("mariadb", p) for p in psutil.process_iter(["name"])
              if p.info["name"] in ("mariadbd", "mysqld")]
    for name, proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        found[name] = found.get(name, 0.0) + times.user + times.system
    return found


# (aggregates, hosts per pool, source, figure name, goal of its ratio)
RUNS = ((100, 5, "notifications", "buildout_ratio", None),
        (100, 5, "mirror", "buildout_ratio_mirror", None),
        (10, 16, "notifications", "buildout_ratio_10x16", ("<=", 1.1)))


def xapi_calls_a_join_needs(hosts_per_pool):
    """The xapi calls per join that a build of pools of ``hosts_per_pool``
    hosts needs (doc/source/benchmarks.rst lists them): four per join (on
    the joiner session.login_with_password, event.from, pool.join; on the
    master the event.from that shows the member complete), and three per
    pool (the master's session.login_with_password and first event.from,
    pool.set_name_label)."""
    joins = hosts_per_pool - 1
    return round((JOIN_CALLS * joins + POOL_CALLS) / joins, 2)


JOIN_CALLS = 4
POOL_CALLS = 3


def efficiency(found):
    """makespan / max(critical-path bound, CPU floor): 1.0 is a build that
    ends as soon as either the serial joins or this machine's cores let
    it."""
    return found["makespan_s"] / max(found["critical_path_bound_s"],
                                     found["cpu_floor_s"])


def run(results, scale=1.0, runs=RUNS):
    """Every run in ``runs``; ``scale`` shrinks the number of pools."""
    figures = {}
    for aggregates, hosts_per_pool, source, name, goal in runs:
        aggregates = max(2, int(aggregates * scale))
        found = measure(aggregates, hosts_per_pool, source=source)
        figures[name] = found
        ratio = found.pop("ratio")
        found["efficiency"] = round(efficiency(found), 3)
        results.add(name, round(ratio, 3), "x bound", goal, details=found)
        if hosts_per_pool == 5 and source == "notifications":
            results.add("buildout_efficiency", found["efficiency"],
                        "x max(bound, CPU floor)", ("<=", 1.15), details={
                            k: found[k] for k in (
                                "makespan_s", "critical_path_bound_s",
                                "cpu_floor_s", "cpu_s_during_build",
                                "cores")})
        if hosts_per_pool == 5 and source == "mirror":
            # NOTE(counted-build): the counts are taken from the build
            # whose desired state is written at once. Through
            # notifications, hosts arrive as fast as the publisher sends
            # them, each one a pass of its pool, so the count there
            # follows the publisher's speed (it is in that build's
            # details).
            _counted(results, found)
        if "rss_mb" not in results:
            results.add("rss_mb", found["peak_rss_mb"], "MB", ("<", 150),
                        details={k: found[k] for k in (
                            "aggregates", "hosts", "peak_pss_mb",
                            "peak_single_process_rss_mb", "idle_rss_mb",
                            "daemon_processes", "by_process")})
        print("   %d pools x %d hosts (%s): makespan %.1fs (publishing "
              "%.1fs), single join %.2fs, bound %.1fs, ratio %.2f, "
              "efficiency %.2f, %d joins, %d pools ready; peak RSS %.1f MB "
              "(PSS %.1f MB, largest process %.1f MB)"
              % (aggregates, hosts_per_pool, source, found["makespan_s"],
                 found["publish_s"], found["single_join_latency_s"],
                 found["critical_path_bound_s"], ratio, found["efficiency"],
                 found["pool_join_calls"],
                 found["pools_live_migration_ready"], found["peak_rss_mb"],
                 found["peak_pss_mb"], found["peak_single_process_rss_mb"]),
              flush=True)
        for title, peak in sorted(found["by_process"].items()):
            print("     %-60s RSS %6.1f MB  PSS %6.1f MB" % (
                title, peak["rss_mb"], peak["pss_mb"]))
        print("     CPU seconds during the build: %s; CPU floor %.1f s "
              "(all of it over %d cores)" % (", ".join(
                  "%s %.1f" % kv for kv in sorted(
                      found["cpu_s_during_build"].items())),
                  found["cpu_floor_s"], found["cores"]))
        print("     reconciler SQL statements: %d (%.1f per join): %s" % (
            found["sql_statements"], found["sql_statements"]
            / max(1, found["pool_join_calls"]), ", ".join(
                "%s %d" % kv for kv in
                found["sql_statements_by_kind"].items())))
        print("     xapi calls: %d (%.2f per join): %s; idle resync pass: "
              "%.2f statements and %.2f xapi calls per pool" % (
                  found["xapi_calls"], found["xapi_calls"]
                  / max(1, found["pool_join_calls"]), ", ".join(
                      "%s %d" % kv for kv in
                      sorted(found["xapi_calls_by_method"].items())),
                  found["idle_pass"]["sql_statements_per_pool"],
                  found["idle_pass"]["xapi_calls_per_pool"]), flush=True)
    return figures


def _counted(results, found):
    """The counted figures of the 100 x 5 build from the database
    (NOTE(counted), NOTE(counted-build))."""
    joins = max(1, found["pool_join_calls"])
    results.add("sql_statements_per_join",
                round(found["sql_statements"] / joins, 2), "statements",
                ("<=", 10), details={
                    "statements": found["sql_statements"], "joins": joins,
                    "by_kind": found["sql_statements_by_kind"]})
    idle = found["idle_pass"]
    results.add("sql_statements_per_idle_pass",
                idle["sql_statements_per_pool"], "statements", ("<=", 3),
                details=idle)
    needs = xapi_calls_a_join_needs(found["hosts_per_pool"])
    results.add("xapi_calls_per_join",
                round(found["xapi_calls"] / joins, 2), "calls", ("==", needs),
                details={"calls": found["xapi_calls"], "joins": joins,
                         "by_method": found["xapi_calls_by_method"],
                         "a_join_needs": needs})
