"""SIGKILL of the daemon mid-join and mid-eject, then a restart.

The daemon (intake + reconciler) is killed with its whole process group
right after the simulator received the pool.join (or pool.eject): the step
took effect in xapi but was never journaled as finished. A new daemon must
resume by observing, converge, and never repeat the call.
"""

from tests.faults import support


# NOTE(in-flight): the simulator logs a call when it arrives and answers
# after the host's latency, so a kill after the call is logged lands while
# the engine waits for the answer: its journal row is still "started".
IN_FLIGHT = 2.0


def _statuses(bed, agg, kind):
    result = {}
    for op in bed.journal(agg, kind=kind):
        result.setdefault(op["host"], []).append(op["status"])
    return result


def test_sigkill_mid_join_then_restart_joins_each_host_exactly_once(bed):
    names = bed.hosts(3, join_delay=0.5)
    joiner = bed.sim.hosts[1]["name_label"]
    bed.sim.set_latency(joiner, IN_FLIGHT)
    daemon = bed.daemon()
    nova = bed.nova()
    agg = support.form_pool(nova, "crash-join", names)
    support.wait_for(lambda: bed.calls("pool.join", 1), timeout=60,
                     what="the first pool.join")
    daemon.kill()
    assert _statuses(bed, agg, "join") == {"cmp-2": ["started"]}
    bed.sim.set_latency(joiner, 0)
    assert not bed.active(agg, names)
    bed.daemon()
    support.wait_for(lambda: bed.active(agg, names), timeout=90,
                     what="the pool to converge after the restart")
    for index in (1, 2):
        assert len(bed.calls("pool.join", index)) == 1
    assert bed.calls("pool.join", 0) == []
    assert bed.pool(agg)["master"] == "cmp-1"
    # The killed step stays in the journal, closed as abandoned.
    assert _statuses(bed, agg, "join") == {"cmp-2": ["abandoned"],
                                           "cmp-3": ["succeeded"]}
    assert all(op["status"] != "started" for op in bed.journal(agg))


def test_sigkill_mid_eject_then_restart_ejects_exactly_once(bed):
    names = bed.hosts(3, eject_delay=0.5)
    daemon = bed.daemon()
    nova = bed.nova()
    agg = support.form_pool(nova, "crash-eject", names)
    support.wait_for(lambda: bed.active(agg, names), timeout=60,
                     what="the pool to form")
    master = bed.sim.hosts[0]["name_label"]
    bed.sim.set_latency(master, IN_FLIGHT)
    nova.remove_host(agg, "cmp-3")
    support.wait_for(lambda: bed.calls("pool.eject"), timeout=60,
                     what="the pool.eject")
    daemon.kill()
    assert _statuses(bed, agg, "eject") == {"cmp-3": ["started"]}
    bed.sim.set_latency(master, 0)
    bed.daemon()
    support.wait_for(lambda: bed.members(agg).get("cmp-3") == "removed"
                     and bed.active(agg, names[:2]), timeout=90,
                     what="the eject to be recognised after the restart")
    assert len(bed.calls("pool.eject")) == 1
    assert bed.sim.role(bed.sim.hosts[2]["name_label"]) == "master"
    assert len(bed.calls("pool.join", 2)) == 1
    assert _statuses(bed, agg, "eject") == {"cmp-3": ["abandoned"]}
    assert all(op["status"] != "started" for op in bed.journal(agg))
