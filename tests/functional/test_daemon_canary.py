"""The daemon proves a pool once it becomes active, once (issue 26 part 3):
Nova's notifications over RabbitMQ, ``poolmgr`` in a subprocess, the
simulator over the real XenAPI client."""

import time

from poolmgr.db import api as db_api
from tests.functional import daemon_support as support
from tests.functional import engine_support as es

DAEMON = ("[xenserver]\ncanary_vm_template = tpl\n"
          "[reconciler]\nlease_time = 5\npoll_interval = 0.1\n"
          "retry_initial_backoff = 0.1\nretry_max_backoff = 1\n"
          "resync_interval = 1\nwait_poll_interval = 0.2\n")


def _canary_rows(aggregate_id):
    return [o for o in es.journal(aggregate_id)
            if o["kind"] == "canary_create"]


def test_the_daemon_proves_a_new_pool_once_across_resyncs_and_restarts(
        sim, bus, daemon_factory):
    s = sim(3, password=support.XAPI_SECRET)
    s.create_shared_sr(1, "NFS")
    s.add_template(1, "tpl")
    names = es.register(s)
    daemon = daemon_factory(extra=DAEMON).start()
    nova = bus.nova()
    agg = nova.create_aggregate("pool-a")
    nova.set_metadata(agg, {"hypervisor_pool": "true"})
    for host in names:
        nova.add_host(agg, host)
    record = support.wait_for(
        lambda: (db_api.get_pool(agg) or {}).get("canary_proof"),
        timeout=60, what="the canary proof")
    assert record["status"] == "proven", record
    assert len(record["hops"]) == 2
    pool = db_api.get_pool(agg)
    assert pool["state"] == "active" and pool["live_migration_ready"]
    assert s.vms_named(1, "poolmgr-canary-%s" % agg) == []
    assert [o["status"] for o in es.journal(agg)
            if o["kind"].startswith("canary_")] == ["succeeded"] * 5
    # Resyncs (one a second) and a restart do not prove it again.
    stamps = {db_api.get_pool(agg)["last_reconciled_at"]}
    support.wait_for(lambda: stamps.add(
        db_api.get_pool(agg)["last_reconciled_at"]) or len(stamps) >= 3,
        timeout=30, interval=0.2, what="two more resyncs")
    assert daemon.stop()[0] == 0
    daemon_factory(extra=DAEMON).start()
    started = db_api.get_pool(agg)["last_reconciled_at"]
    support.wait_for(lambda: db_api.get_pool(agg)["last_reconciled_at"]
                     != started, timeout=30, what="a pass after the restart")
    time.sleep(0.5)
    assert len(_canary_rows(agg)) == 1
    assert db_api.get_pool(agg)["canary_proof"] == record
