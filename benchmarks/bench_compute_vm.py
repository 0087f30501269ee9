"""The compute node's downtime per join in the classic topology (issue 12).

``python benchmarks/bench_compute_vm.py [--hosts 8] [--join-delay 2]``
prints the figures; ``run(results)`` stores them for ``benchmarks/run.py``.
Figures, not assertions.

Every simulated host runs its nova-compute in a VM (``--compute-vms``);
the engine (in process, real MariaDB, the simulator through the real
XenAPI client) forms one pool of all of them: for each joiner it shuts the
compute VM down, joins, waits for the master to list the host live and
starts the VM there. The downtime of each node (shutdown to running again)
is read from the journal row that stores it (``operations.downtime_s``).
Most of it is xapi's own restart after pool.join (``--join-delay``; real
xapi: about 10 s); ``overhead`` is what poolmgr adds on top of it.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import common  # noqa: E402

PASSWORD = "bench-compute-vm"


def _conf():
    from poolmgr import bootstrap
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("connection_password", PASSWORD, group="xenserver")
    conf.set_override("call_timeout", 10.0, group="xenserver")
    conf.set_override("join_timeout", 120.0, group="xenserver")
    for key, value in (("lease_time", 10.0), ("poll_interval", 0.1),
                       ("retry_initial_backoff", 0.1),
                       ("retry_max_backoff", 1.0)):
        conf.set_override(key, value, group="reconciler")
    return conf


def measure(hosts=8, join_delay=2.0):
    from poolmgr.db import api as db_api
    from poolmgr.db import compute_vms
    from poolmgr import engine as pool_engine
    from poolmgr.simulator import Simulator

    sim = Simulator(hosts=hosts, port=0, address_base=120, password=PASSWORD,
                    join_delay=join_delay, eject_delay=1.0, compute_vms=True)
    sim.start()
    try:
        with common.scratch_database():
            names = []
            for i, host in enumerate(sim.hosts, 1):
                name = "compute%d" % i
                db_api.register_host(name, host["url"])
                compute_vms.set_compute_vm(name, host["compute_vm_uuid"])
                names.append(name)
            db_api.put_aggregate(1, "bench-pool", names,
                                 {"hypervisor_pool": "true"})
            engine = pool_engine.Engine(_conf(), owner="bench-compute-vm")
            start = time.monotonic()
            result = engine.reconcile_pool(1)
            elapsed = time.monotonic() - start
            downtimes = [op["downtime_s"] for op in db_api.list_operations(
                1, limit=10000, kind="compute_vm_start")
                if op["downtime_s"] is not None]
            running = sum(1 for h in sim.hosts
                          if sim.vm_state(h["compute_vm_uuid"]).get(
                              "power_state") == "Running")
    finally:
        sim.stop()
    mean = statistics.mean(downtimes) if downtimes else None
    return {"hosts": hosts, "joins": len(downtimes),
            "converged": bool(result.converged),
            "compute_vms_running": running, "join_delay_s": join_delay,
            "downtime_mean_s": round(mean, 3) if mean is not None else None,
            "downtime_max_s": round(max(downtimes), 3) if downtimes
            else None,
            "downtime_min_s": round(min(downtimes), 3) if downtimes
            else None,
            "overhead_mean_s": round(mean - join_delay, 3)
            if mean is not None else None,
            "buildout_s": round(elapsed, 3)}


def run(results, scale=1.0):
    figures = measure(hosts=max(3, int(8 * scale)))
    results.add("compute_vm_downtime_mean_s", figures["downtime_mean_s"], "s",
                details=figures)
    results.add("compute_vm_downtime_max_s", figures["downtime_max_s"], "s",
                details={"join_delay_s": figures["join_delay_s"]})
    results.add("compute_vm_downtime_overhead_s", figures["overhead_mean_s"],
                "s", ("<=", 3.0),
                details={"what": "mean downtime minus xapi's join restart"})
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--join-delay", type=float, default=2.0,
                        help="seconds a simulated host restarts after "
                             "pool.join (real xapi: about 10)")
    args = parser.parse_args(argv)
    f = measure(args.hosts, args.join_delay)
    print("hosts                       %d (%d joins, converged: %s, compute "
          "VMs running after: %d)" % (f["hosts"], f["joins"], f["converged"],
                                      f["compute_vms_running"]))
    print("xapi restart after join     %.1f s (simulated)" % f["join_delay_s"])
    print("downtime per join           mean %.2f s, min %.2f s, max %.2f s"
          % (f["downtime_mean_s"], f["downtime_min_s"], f["downtime_max_s"]))
    print("poolmgr's overhead          %.2f s per join (mean downtime minus "
          "the restart)" % f["overhead_mean_s"])
    print("pool built in               %.1f s" % f["buildout_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
