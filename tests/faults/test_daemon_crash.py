"""SIGKILL of the daemon mid-join and mid-eject, then a restart.

The daemon (intake + reconciler) is killed with its whole process group
right after the simulator received the pool.join (or pool.eject): the step
took effect in xapi but was never journaled as finished. A new daemon must
resume by observing, converge, and never repeat the call.
"""

from tests.faults import support


def test_sigkill_mid_join_then_restart_joins_each_host_exactly_once(bed):
    names = bed.hosts(3, join_delay=0.5)
    daemon = bed.daemon()
    nova = bed.nova()
    agg = support.form_pool(nova, "crash-join", names)
    support.wait_for(lambda: bed.calls("pool.join", 1), timeout=60,
                     what="the first pool.join")
    daemon.kill()
    assert not bed.active(agg, names)
    bed.daemon()
    support.wait_for(lambda: bed.active(agg, names), timeout=90,
                     what="the pool to converge after the restart")
    for index in (1, 2):
        assert len(bed.calls("pool.join", index)) == 1
    assert bed.calls("pool.join", 0) == []
    assert bed.pool(agg)["master"] == "cmp-1"
    # The killed step stays in the journal, closed as abandoned.
    joins = bed.journal(agg, kind="join")
    assert len({op["owner"] for op in joins}) >= 1
    assert all(op["status"] != "started" for op in bed.journal(agg))


def test_sigkill_mid_eject_then_restart_ejects_exactly_once(bed):
    names = bed.hosts(3, eject_delay=0.5)
    daemon = bed.daemon()
    nova = bed.nova()
    agg = support.form_pool(nova, "crash-eject", names)
    support.wait_for(lambda: bed.active(agg, names), timeout=60,
                     what="the pool to form")
    nova.remove_host(agg, "cmp-3")
    support.wait_for(lambda: bed.calls("pool.eject"), timeout=60,
                     what="the pool.eject")
    daemon.kill()
    bed.daemon()
    support.wait_for(lambda: bed.members(agg).get("cmp-3") == "removed"
                     and bed.active(agg, names[:2]), timeout=90,
                     what="the eject to be recognised after the restart")
    assert len(bed.calls("pool.eject")) == 1
    assert bed.sim.role(bed.sim.hosts[2]["name_label"]) == "master"
    assert len(bed.calls("pool.join", 2)) == 1
    assert all(op["status"] != "started" for op in bed.journal(agg))
