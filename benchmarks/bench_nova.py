"""The real Nova fixture's cost, and what a desired-state sync costs.

Starts the real Nova 34 control plane of tests/realnova (4 fake-driver
computes), creates ``AGGREGATES`` flagged aggregates of two hosts each
through its API, and runs poolmgr's sync (GET /os-aggregates through
openstacksdk, folded into a scratch MariaDB database) twice:

- realnova_start_s: fresh databases, syncs, services up, computes
  registered. Goal <= 60 (CI runs it once per session).
- realnova_rss_mb: resident memory of all its processes. Goal <= 1500.
- nova_sync_adopt_s: the first sync, adopting every aggregate.
- nova_sync_idle_s: a sync with nothing to change (the periodic cost).
"""

import time

import common
from poolmgr.db import api as db_api
from poolmgr.nova import client as nova_api
from poolmgr.nova import sync as novasync
from tests.functional import nova_support
from tests.realnova import novactl

AGGREGATES = 100


def measure(count):
    real = novactl.RealNova(["compute1", "compute2", "compute3",
                             "compute4"])
    begun = time.monotonic()
    real.start()
    try:
        start_s = time.monotonic() - begun
        rss = sum(real.rss_mb().values())
        created = time.monotonic()
        for i in range(count):
            agg = real.create_aggregate("bench-%d" % i)
            real.set_metadata(agg["id"], {"hypervisor_pool": "true"})
            for host in ("compute%d" % (1 + i % 4),
                         "compute%d" % (1 + (i + 1) % 4)):
                real.add_host(agg["id"], host)
        create_s = time.monotonic() - created
        client = nova_api.NovaClient(nova_support.nova_conf(real))
        client.list_aggregates()  # version discovery, once per client
        with common.scratch_database():
            t0 = time.monotonic()
            _, changes = novasync.sync_once(client)
            adopt_s = time.monotonic() - t0
            t0 = time.monotonic()
            _, idle = novasync.sync_once(client)
            idle_s = time.monotonic() - t0
            pools = len(db_api.list_pools())
    finally:
        real.stop()
    return {"start_s": round(start_s, 1), "rss_mb": round(rss),
            "aggregates": count, "create_s": round(create_s, 1),
            "adopt_s": adopt_s, "adopted": len(changes), "idle_s": idle_s,
            "idle_changes": len(idle), "pools": pools,
            "timings": {k: round(v, 1) for k, v in real.timings.items()}}


def run(results, scale=1.0):
    problem = novactl.venv_problem(novactl.default_venv())
    if problem:
        print("   skipped: no real Nova: %s" % problem)
        return {}
    count = max(5, int(AGGREGATES * scale))
    figures = measure(count)
    results.add("realnova_start_s", figures["start_s"], "s", ("<=", 60),
                details=figures["timings"])
    results.add("realnova_rss_mb", figures["rss_mb"], "MB", ("<=", 1500))
    results.add("nova_sync_adopt_s", round(figures["adopt_s"], 3), "s",
                details={"aggregates": count, "adopted": figures["adopted"],
                         "pools": figures["pools"]})
    results.add("nova_sync_idle_s", round(figures["idle_s"], 3), "s",
                details={"aggregates": count,
                         "changes": figures["idle_changes"]})
    print("   real Nova up in %.1f s, %d MB; %d aggregates created in %.1f s;"
          " sync adopting them %.3f s (%d pools), idle sync %.3f s"
          % (figures["start_s"], figures["rss_mb"], count,
             figures["create_s"], figures["adopt_s"], figures["pools"],
             figures["idle_s"]))
    return figures
