"""Two daemons on one database and one queue.

Both consume the same queue (competing consumers) and lease pools from the
same database. The work is shared, no pool is mutated by both at once
(fencing: journal owner/generation and the simulator's call log), and
nothing is lost.
"""

from poolmgr.db import api as db_api
from tests.faults import support
from tests.functional import daemon_support as ds

POOLS = 5
SHARE = "threads = 2\nwait_threads = 1\n"


def test_two_daemons_share_work_fence_pools_and_lose_nothing(bed):
    names = bed.hosts(2 * POOLS, join_delay=0.3)
    # NOTE(share): each daemon has fewer threads than there are pools, so
    # neither can take every pool at once: the work is shared because one
    # engine alone is saturated, as when an operator runs a second daemon
    # for capacity. With 8 threads each, the engine that polled first took
    # all five pools at once most of the time, which is correct too. Each
    # xapi call takes 50 ms, as a real dom0's do (more for pool.join): with
    # passes of a few milliseconds against the simulator, two threads were
    # saturated for a tenth of a second only, and the engine that polled
    # first still took every pool in one run of eight.
    for host in bed.sim.hosts:
        bed.sim.set_latency(host, 0.05)
    first, second = bed.daemon(SHARE), bed.daemon(SHARE)
    nova = bed.nova()
    aggregates = [support.form_pool(nova, "shared-%d" % n,
                                    names[2 * n:2 * n + 2])
                  for n in range(POOLS)]
    ds.recorded(len(nova.sent))
    support.wait_for(lambda: all(
        bed.active(agg, names[2 * n:2 * n + 2])
        for n, agg in enumerate(aggregates)), timeout=120,
        what="every pool to form")
    # Nothing lost, nothing stored twice.
    rows = db_api.list_notifications(limit=10000)
    assert len(rows) == len(nova.sent)
    assert len({r["message_id"] for r in rows}) == len(rows)
    # Exactly one join per joiner, none on a master.
    for index in range(2 * POOLS):
        assert len(bed.calls("pool.join", index)) == index % 2
    ops = bed.journal()
    owners = {op["owner"].rsplit(":", 1)[0] for op in ops}
    for agg in aggregates:
        pool_ops = [op for op in ops if op["aggregate_id"] == agg]
        # Fencing: steps of one pool by different holders never overlap,
        # and each holder's generation is one lease of its own.
        for a in pool_ops:
            for b in pool_ops:
                if a["generation"] == b["generation"]:
                    assert a["owner"] == b["owner"]
                elif a["owner"] != b["owner"]:
                    assert (a["finished_at"] <= b["started_at"]
                            or b["finished_at"] <= a["started_at"])
    # Both processes took part: both reconcilers journaled steps (owner is
    # host:pid:worker) and the intake of each stored messages.
    assert len(owners) == 2, owners
    assert all(d.proc.poll() is None for d in (first, second))
    for daemon in (first, second):
        assert "Notification " in daemon.log_text(), \
            "one daemon's intake got no message"
