"""resync_calls_per_pool, resync_bytes_per_pool: a drift check of converged
pools, as the daemon's periodic resync runs it.

100 pools of 3 simulated hosts are built by the engine (in-process, real
MySQL, the simulator over real XML-RPC); then every member gets 50 running
VMs (150 per pool). The engine that built them keeps its sessions and its
event.from feeds (steady state). One resync pass over every pool catches
up with the VMs (a delta with 150 VM records per pool); the next pass is
the steady state the figures describe:

- resync_calls_per_pool: xapi calls the simulator received during the
  steady-state pass (its call log), divided by the number of pools.
  Goal <= 1.
- resync_bytes_per_pool: bytes on the wire (client side, at the socket:
  request and response, headers included) during that pass, per pool.
  Goal <= 2 KB.
- details: the catch-up pass, and a freshly started engine (a login and a
  full read per pool: O(objects), what every resync cost before).
- feed_kb_per_pool: the memory the engine's feed of one pool holds in
  steady state (its records, kept with the fields poolmgr reads:
  records.FIELDS), beside the same pools' records as event.from sends them,
  read in the same run through the same client (``full_kb_per_pool``).
  The simulator's records have fewer fields than a real xapi's (a host 29
  against some 90), so a real pool's full records are larger still.
"""

import threading
import time

import common
from poolmgr.db import api as db_api
from poolmgr import engine as pool_engine
from poolmgr.simulator import Simulator
from poolmgr import bootstrap
from poolmgr.xenapi import operations
from poolmgr.xenapi import records
import wire

POOLS = 100
HOSTS_PER_POOL = 3
VMS_PER_HOST = 50
PASSWORD = "bench-xapi-secret"


def _conf(threads):
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("connection_password", PASSWORD, group="xenserver")
    conf.set_override("call_timeout", 30.0, group="xenserver")
    for key, value in {"threads": threads, "poll_interval": 0.1,
                       "lease_time": 30.0, "resync_interval": 3600.0,
                       "retry_initial_backoff": 0.1,
                       "retry_max_backoff": 1.0}.items():
        conf.set_override(key, value, group="reconciler")
    return conf


def _pass(engine, ids, threads):
    """Reconcile every pool once, ``threads`` at a time; (seconds, ok)."""
    pending = list(ids)
    lock = threading.Lock()
    converged = []

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                agg = pending.pop()
            if engine.reconcile_pool(agg).converged:
                with lock:
                    converged.append(agg)

    start = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.monotonic() - start, len(converged)


def _measured_pass(engine, ids, threads, sim, counter):
    for agg in ids:
        db_api.mark_due(agg)
    sim.reset_call_log()
    counter.reset()
    seconds, ok = _pass(engine, ids, threads)
    calls = list(sim.call_log)
    methods = {}
    for call in calls:
        methods[call.method] = methods.get(call.method, 0) + 1
    return {"pass_s": round(seconds, 3), "converged": ok,
            "calls_per_pool": round(len(calls) / len(ids), 2),
            "bytes_per_pool": round(counter.total / len(ids)),
            "bytes_sent_per_pool": round(counter.sent / len(ids)),
            "calls_by_method": methods}


def _feed_memory(engine, ids):
    """KB per pool: the engine's feeds as kept, and the same pools' records
    in full (one event.from with token "" on each master, untrimmed)."""
    kept_seen, full_seen = set(), set()
    kept = full = 0
    # Every table read stays alive until the end: deep_size counts by id(),
    # and a freed table's ids would be reused by the next one.
    alive = []
    for agg in ids:
        feed = engine.feeds.get(agg)
        kept += common.deep_size(feed.tables, kept_seen)
        tables, _ = operations.full_batch(engine.sessions.get(feed.url),
                                          keep=records.as_sent)
        alive.append(tables)
        full += common.deep_size(tables, full_seen)
    return round(kept / 1024.0 / len(ids), 1), round(
        full / 1024.0 / len(ids), 1)


def measure(pools=POOLS, threads=16, vms_per_host=VMS_PER_HOST):
    sim = Simulator(hosts=pools * HOSTS_PER_POOL, port=0, password=PASSWORD,
                    join_delay=0.05, eject_delay=0.05)
    sim.start()
    counter = wire.ByteCounter([h["url"] for h in sim.hosts])
    try:
        with common.scratch_database(), counter.counting():
            conf = _conf(threads)
            names = []
            for i, host in enumerate(sim.hosts):
                names.append("cmp-%04d" % i)
                db_api.register_host(names[-1], host["url"])
            ids = list(range(1, pools + 1))
            for agg in ids:
                first = (agg - 1) * HOSTS_PER_POOL
                db_api.put_aggregate(agg, "pool-%03d" % agg,
                                     names[first:first + HOSTS_PER_POOL],
                                     {"hypervisor_pool": "true"})
            engine = pool_engine.Engine(conf, owner="bench-resync")
            build_s, built = _pass(engine, ids, threads)
            if built != pools:
                raise RuntimeError("only %d of %d pools converged" % (
                    built, pools))
            for host in sim.hosts:
                for n in range(vms_per_host):
                    sim.create_running_vm(host["name_label"],
                                          "%s-vm-%02d" % (host["name_label"],
                                                          n))
            catch_up = _measured_pass(engine, ids, threads, sim, counter)
            steady = _measured_pass(engine, ids, threads, sim, counter)
            cold_engine = pool_engine.Engine(conf, owner="bench-resync-cold")
            cold = _measured_pass(cold_engine, ids, threads, sim, counter)
            feeds = engine.feeds.stats()
            feeds["kept_kb_per_pool"], feeds["full_kb_per_pool"] = \
                _feed_memory(engine, ids)
            engine.sessions.close()
            cold_engine.sessions.close()
    finally:
        sim.stop()
    return {"pools": pools, "hosts_per_pool": HOSTS_PER_POOL,
            "vms_per_pool": HOSTS_PER_POOL * vms_per_host, "threads": threads,
            "build_s": round(build_s, 2), "steady": steady,
            "catch_up_after_vms": catch_up, "cold_engine": cold,
            "feeds": feeds}


def run(results, scale=1.0):
    pools = max(5, int(POOLS * scale))
    figures = measure(pools)
    steady = figures["steady"]
    results.add("resync_calls_per_pool", steady["calls_per_pool"], "calls",
                ("<=", 1), details=figures)
    results.add("resync_bytes_per_pool", steady["bytes_per_pool"], "bytes",
                ("<=", 2048), details={
                    "catch_up_bytes_per_pool":
                        figures["catch_up_after_vms"]["bytes_per_pool"],
                    "cold_engine_bytes_per_pool":
                        figures["cold_engine"]["bytes_per_pool"]})
    results.add("resync_pass_s", steady["pass_s"], "s",
                details={"pools": pools, "threads": figures["threads"]})
    feeds = figures["feeds"]
    results.add("feed_kb_per_pool", feeds["kept_kb_per_pool"], "KB",
                details={"full_kb_per_pool": feeds["full_kb_per_pool"],
                         "vms_per_pool": figures["vms_per_pool"]})
    print("   %d converged pools x %d VMs: %.2f calls/pool (%s), %d B/pool, "
          "pass %.2fs; catch-up %d B/pool; cold engine %.2f calls/pool, "
          "%d B/pool; feeds keep %.1f KB/pool (%.1f KB in full)"
          % (pools, figures["vms_per_pool"], steady["calls_per_pool"],
             steady["calls_by_method"], steady["bytes_per_pool"],
             steady["pass_s"], figures["catch_up_after_vms"]["bytes_per_pool"],
             figures["cold_engine"]["calls_per_pool"],
             figures["cold_engine"]["bytes_per_pool"],
             feeds["kept_kb_per_pool"], feeds["full_kb_per_pool"]))
    return figures
