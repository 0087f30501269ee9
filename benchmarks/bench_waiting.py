"""xapi_calls_per_waiting_pool_s: what a join in progress costs its master.

One aggregate of 2 simulated hosts with a shared SR; the joiner takes
``JOIN_DELAY`` seconds to come back as a slave (a real join takes 30 s to
minutes). The engine runs as in the daemon (``run_forever``, default
options) in this process. From the pool.join call until the member is
live with its PBDs, every call the master receives is counted (the
simulator's call log):

- xapi_calls_per_waiting_pool_s: those calls / the wait's seconds.
  Goal <= 1. The details split them by method and give the calls the
  joiner received in the same window.
"""

import threading
import time

import common
from poolmgr.db import api as db_api
from poolmgr import engine as pool_engine
from poolmgr.simulator import Simulator
from poolmgr import bootstrap

JOIN_DELAY = 20.0
PASSWORD = "bench-xapi-secret"


def _conf():
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("connection_password", PASSWORD, group="xenserver")
    conf.set_override("poll_interval", 0.5, group="reconciler")
    return conf


def _stop(stop, thread, engine):
    stop.set()
    if thread is not None:
        engine.stop()
        thread.join(30)


def measure(join_delay=JOIN_DELAY):
    sim = Simulator(hosts=2, port=0, password=PASSWORD, address_base=200,
                    join_delay=join_delay, eject_delay=1.0).start()
    master, joiner = (h["name_label"] for h in sim.hosts)
    sim.create_shared_sr(master, "nfs-shared", "nfs")
    stop = threading.Event()
    thread = None
    try:
        with common.scratch_database():
            for i, host in enumerate(sim.hosts):
                db_api.register_host("cmp-%d" % i, host["url"])
            db_api.put_aggregate(1, "waiting", ["cmp-0", "cmp-1"],
                                 {"hypervisor_pool": "true"})
            engine = pool_engine.Engine(_conf(), owner="bench-waiting")
            thread = threading.Thread(target=engine.run_forever,
                                      args=(stop,), daemon=True)
            thread.start()
            join = common.wait_for(lambda: sim.calls("pool.join"),
                                   timeout=60, what="the pool.join")[0]
            common.wait_for(lambda: (db_api.get_pool(1) or {}).get(
                "state") == "active", timeout=join_delay + 60,
                interval=0.05, what="the member to be active")
            done = time.time()
            window = [c for c in sim.call_log
                      if join.timestamp < c.timestamp <= done]
            _stop(stop, thread, engine)
            thread = None
    finally:
        # The engine stops before its database goes (it logged a
        # traceback for every claim after the scratch database was gone).
        _stop(stop, thread, engine if thread is not None else None)
        sim.stop()
    seconds = done - join.timestamp
    on_master = [c for c in window if c.host == master]
    methods = {}
    for call in on_master:
        methods[call.method] = methods.get(call.method, 0) + 1
    return {"join_delay_s": join_delay, "wait_s": round(seconds, 2),
            "master_calls": len(on_master), "master_calls_by_method": methods,
            "joiner_calls": sum(1 for c in window if c.host == joiner),
            "calls_per_s": len(on_master) / seconds}


def run(results, scale=1.0):
    figures = measure(max(5.0, JOIN_DELAY * min(scale, 1.0)))
    value = figures.pop("calls_per_s")
    results.add("xapi_calls_per_waiting_pool_s", round(value, 3), "calls/s",
                ("<=", 1), details=figures)
    print("   join of %.0f s: %d calls to the master in %.1f s (%.2f/s: %s), "
          "%d to the joiner" % (figures["join_delay_s"],
                                figures["master_calls"], figures["wait_s"],
                                value, figures["master_calls_by_method"],
                                figures["joiner_calls"]))
    return figures
