"""resync_calls_per_pool: what a drift check of converged pools costs xapi.

100 pools of 3 simulated hosts are built by the engine (in-process, real
MySQL, the simulator over real XML-RPC). Then every pool is made due and
one resync pass runs over all of them, as the daemon's periodic resync
does: the engine that built them keeps its sessions (steady state).

- resync_calls_per_pool: xapi calls the simulator received during the pass
  (its call log), divided by the number of pools. Goal <= 3.
- resync_pass_s: the pass's wall time.
- the same pass with a freshly started engine (a login per pool on top) is
  in the details.
"""

import threading
import time

import common
from poolmgr.db import api as db_api
from poolmgr import engine as pool_engine
from poolmgr.simulator import Simulator
from poolmgr import service

POOLS = 100
HOSTS_PER_POOL = 3
PASSWORD = "bench-xapi-secret"


def _conf(threads):
    conf = service.build_conf()
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


def measure(pools=POOLS, threads=16):
    sim = Simulator(hosts=pools * HOSTS_PER_POOL, port=0, password=PASSWORD,
                    join_delay=0.05, eject_delay=0.05)
    sim.start()
    try:
        with common.scratch_database():
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
            # Steady state: the same engine, its sessions open.
            for agg in ids:
                db_api.mark_due(agg)
            sim.reset_call_log()
            warm_s, warm_ok = _pass(engine, ids, threads)
            warm_calls = list(sim.call_log)
            # A freshly started engine: one login per pool on top.
            cold = pool_engine.Engine(conf, owner="bench-resync-cold")
            sim.reset_call_log()
            cold_s, cold_ok = _pass(cold, ids, threads)
            cold_calls = list(sim.call_log)
            engine.sessions.close()
            cold.sessions.close()
    finally:
        sim.stop()
    methods = {}
    for call in warm_calls:
        methods[call.method] = methods.get(call.method, 0) + 1
    mutating = [c for c in warm_calls + cold_calls
                if c.method.split(".")[-1].startswith(
                    ("join", "eject", "set_", "plug", "create",
                     "designate"))]
    return {"pools": pools, "hosts_per_pool": HOSTS_PER_POOL,
            "threads": threads, "build_s": round(build_s, 2),
            "calls_per_pool": len(warm_calls) / pools,
            "pass_s": round(warm_s, 3), "converged": warm_ok,
            "calls_by_method": methods,
            "cold_calls_per_pool": round(len(cold_calls) / pools, 2),
            "cold_pass_s": round(cold_s, 3), "cold_converged": cold_ok,
            "mutating_calls_in_resync": len(mutating)}


def run(results, scale=1.0):
    pools = max(5, int(POOLS * scale))
    figures = measure(pools)
    results.add("resync_calls_per_pool", round(figures["calls_per_pool"], 2),
                "calls", ("<=", 3), details=figures)
    results.add("resync_pass_s", figures["pass_s"], "s",
                details={"pools": pools, "threads": figures["threads"]})
    print("   %d converged pools: %.2f calls/pool (%s), pass %.2fs; cold "
          "engine %.2f calls/pool, %.2fs"
          % (pools, figures["calls_per_pool"], figures["calls_by_method"],
             figures["pass_s"], figures["cold_calls_per_pool"],
             figures["cold_pass_s"]))
    return figures
