"""buildout_ratio and rss_mb: 100 aggregates x 5 hosts through the daemon.

The real daemon (``poolmgr --config-file F``: intake + reconciler workers)
runs as a subprocess against RabbitMQ and a fresh MySQL database; 500
simulated XenServer hosts (``--join-delay 1``) run in this process. Nova's
notifications (versioned and legacy, as ``notification_format = both``)
create 100 aggregates flagged ``hypervisor_pool`` and add 5 hosts to each.

- makespan: from the first notification to every pool ``active`` with all
  five members ``active``;
- single join latency: one pool of 2 hosts reconciled alone by the engine
  (observe, rename, pool.join, wait until live and enabled);
- buildout_ratio = makespan / (4 joins x single join latency). Goal <= 1.2.
- rss_mb: peak RSS of the daemon's processes (master + workers, summed)
  sampled every 0.2 s during the build-out. Goal < 150 MB. The peak PSS
  (shared pages split between the processes) and the largest single
  process are in the details.
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
from poolmgr.db import api as db_api
from poolmgr import fakenova
from poolmgr.simulator import Simulator
from poolmgr import service

AGGREGATES = 100
HOSTS_PER_POOL = 5
JOIN_DELAY = 1.0
PASSWORD = "bench-xapi-secret"
# NOTE(threads): every pool is built in parallel only if the reconciler
# has a thread per pool; the figure is measured with this setting.
RECONCILER_THREADS = 100


def _poolmgr():
    found = pathlib.Path(sys.executable).with_name("poolmgr")
    return str(found) if found.exists() else shutil.which("poolmgr")


def _config(path, names, url, threads):
    path.write_text(textwrap.dedent("""\
        [DEFAULT]
        transport_url = {rabbit}
        debug = false
        [database]
        connection = {db}
        max_pool_size = 20
        max_overflow = 40
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
        threads = {threads}
        poll_interval = 0.5
        lease_time = 30
        resync_interval = 3600
        """).format(rabbit=common.RABBIT_URL, db=url,
                    exchange=names.exchange, topics=",".join(names.topics),
                    pool=names.pool, password=PASSWORD, threads=threads))


class RssSampler(threading.Thread):
    """Peak RSS (and PSS) of a process tree, sampled until stopped."""

    def __init__(self, pid, interval=0.2):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = self.peak_pss = self.peak_single = 0
        self.processes = 0
        self.stop_event = threading.Event()

    def sample(self):
        procs = [self.root] + self.root.children(recursive=True)
        rss = pss = single = 0
        for proc in procs:
            try:
                info = proc.memory_full_info()
            except (psutil.Error, OSError):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            single = max(single, info.rss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_single = max(self.peak_single, single)
        self.processes = max(self.processes, len(procs))

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)


def single_join_latency(conf_file):
    """Seconds for the engine to build a 2-host pool (one join) alone."""
    from poolmgr import engine as pool_engine
    sim = Simulator(hosts=2, port=0, address_base=230, password=PASSWORD,
                    join_delay=JOIN_DELAY, eject_delay=JOIN_DELAY).start()
    try:
        for i, host in enumerate(sim.hosts):
            db_api.register_host("probe-%d" % i, host["url"])
        db_api.put_aggregate(10 ** 6, "probe", ["probe-0", "probe-1"],
                             {"hypervisor_pool": "true"})
        conf = service.prepare_service(["--config-file", str(conf_file)],
                                       setup_logging=False)
        engine = pool_engine.Engine(conf, owner="bench-probe")
        start = time.monotonic()
        result = engine.reconcile_pool(10 ** 6)
        elapsed = time.monotonic() - start
        if not result.converged:
            raise RuntimeError("probe pool did not converge: %s" % result)
        db_api.update_pool(10 ** 6, due_at=None)
        return elapsed
    finally:
        sim.stop()


def _all_active(expected):
    pools = {p["aggregate_id"]: p["state"] for p in db_api.list_pools()}
    if sum(1 for a in expected if pools.get(a) == "active") < len(expected):
        return False
    active = {}
    for member in db_api.list_all_members():
        if member["state"] == "active":
            active[member["aggregate_id"]] = active.get(
                member["aggregate_id"], 0) + 1
    return all(active.get(a, 0) == HOSTS_PER_POOL for a in expected)


def measure(aggregates=AGGREGATES, threads=RECONCILER_THREADS,
            timeout=600):
    names = common.Names("pmbench_buildout")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="pmbench-"))
    sim = None
    proc = None
    transport = None
    try:
        with common.scratch_database() as url:
            conf_file = workdir / "poolmgr.conf"
            _config(conf_file, names, url, threads)
            latency = single_join_latency(conf_file)
            t0 = time.monotonic()
            sim = Simulator(hosts=aggregates * HOSTS_PER_POOL, port=0,
                            password=PASSWORD, join_delay=JOIN_DELAY,
                            eject_delay=JOIN_DELAY).start()
            sim_start = time.monotonic() - t0
            hosts = []
            for i, host in enumerate(sim.hosts):
                name = "cmp-%04d" % i
                db_api.register_host(name, host["url"])
                hosts.append(name)
            log = open(workdir / "poolmgr.log", "wb")
            proc = subprocess.Popen([_poolmgr(), "--config-file",
                                     str(conf_file)], stdout=log,
                                    stderr=subprocess.STDOUT,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"))
            common.wait_for(lambda: b"listening on exchange" in
                            (workdir / "poolmgr.log").read_bytes()
                            or proc.poll() is not None, timeout=60,
                            what="the daemon to listen")
            if proc.poll() is not None:
                raise RuntimeError(
                    (workdir / "poolmgr.log").read_text()[-2000:])
            sampler = RssSampler(proc.pid)
            sampler.sample()
            idle_rss = sampler.peak_rss
            sampler.start()
            conf = service.build_conf()
            conf([], project="poolmgr", default_config_files=[])
            conf.set_override("control_exchange", names.exchange)
            conf.set_override("amqp_durable_queues", True,
                              group="oslo_messaging_rabbit")
            transport = oslo_messaging.get_notification_transport(
                conf, url=common.RABBIT_URL)
            nova = fakenova.FakeNova(transport,
                                     legacy_topics=[names.legacy_topic],
                                     versioned_topics=[names.versioned_topic])
            start = time.monotonic()
            ids = []
            for n in range(aggregates):
                agg = nova.create_aggregate("pool-%03d" % n)
                nova.set_metadata(agg, {"hypervisor_pool": "true"})
                ids.append(agg)
            for h in range(HOSTS_PER_POOL):
                for n, agg in enumerate(ids):
                    nova.add_host(agg, hosts[n * HOSTS_PER_POOL + h])
            published = time.monotonic() - start
            common.wait_for(lambda: _all_active(ids), timeout=timeout,
                            interval=0.2, what="every pool to be active")
            makespan = time.monotonic() - start
            sampler.stop_event.set()
            sampler.join()
            joins = len(sim.calls("pool.join"))
            notifications = len(nova.sent)
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
    bound = (HOSTS_PER_POOL - 1) * latency
    mb = 1024.0 * 1024.0
    return {"makespan_s": round(makespan, 2),
            "single_join_latency_s": round(latency, 3),
            "critical_path_bound_s": round(bound, 2),
            "ratio": makespan / bound,
            "publish_s": round(published, 2),
            "notifications": notifications, "pool_join_calls": joins,
            "aggregates": aggregates, "hosts": aggregates * HOSTS_PER_POOL,
            "join_delay_s": JOIN_DELAY, "reconciler_threads": threads,
            "simulator_start_s": round(sim_start, 2),
            "peak_rss_mb": round(sampler.peak_rss / mb, 1),
            "peak_pss_mb": round(sampler.peak_pss / mb, 1),
            "peak_single_process_rss_mb": round(sampler.peak_single / mb, 1),
            "idle_rss_mb": round(idle_rss / mb, 1),
            "daemon_processes": sampler.processes}


def run(results, scale=1.0):
    aggregates = max(2, int(AGGREGATES * scale))
    figures = measure(aggregates)
    ratio = figures.pop("ratio")
    results.add("buildout_ratio", round(ratio, 3), "x bound", ("<=", 1.2),
                details=figures)
    results.add("rss_mb", figures["peak_rss_mb"], "MB", ("<", 150),
                details={k: figures[k] for k in (
                    "peak_pss_mb", "peak_single_process_rss_mb",
                    "idle_rss_mb", "daemon_processes")})
    print("   %d pools x %d hosts: makespan %.1fs, single join %.2fs, "
          "%d joins; peak RSS %.0f MB (PSS %.0f MB, largest process %.0f MB)"
          % (figures["aggregates"], HOSTS_PER_POOL, figures["makespan_s"],
             figures["single_join_latency_s"], figures["pool_join_calls"],
             figures["peak_rss_mb"], figures["peak_pss_mb"],
             figures["peak_single_process_rss_mb"]))
    return figures
