"""What one pass writes: each fact once, in as few statements as it takes.

Real MariaDB, the simulator over real XML-RPC, the engine in-process. The
statements of a pass are captured from SQLAlchemy's engine (with their
parameters), so each test names the writes it expects and fails on one
more or one fewer.
"""

import threading

from poolmgr.db import api as db_api
from tests.functional import engine_support as es


def _updates(seen, table):
    return [(sql, params) for sql, params in seen
            if sql.startswith("UPDATE %s " % table)]


def test_a_join_pass_writes_its_member_once_and_its_wait_with_the_release(
        sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    # A problem met by an earlier wait on this host (engine.waits._problem)
    # is stale once it joins again: the join's write clears it.
    db_api.add_members(1, names)
    db_api.upsert_member(1, "cmp-2", error_code="HOST_OFFLINE",
                         error_params=["cmp-2"])
    result, seen = es.one_pass(es.engine(es.make_conf()), 1)
    assert result.pending == "wait", result
    assert len(es.calls(s, "pool.join", s.hosts[1])) == 1
    # One UPDATE of the members: cmp-2 joining, with the master cmp-1
    # written active in the same statement (NOTE(members-write)).
    member_writes = _updates(seen, "pool_members")
    assert len(member_writes) == 1, member_writes
    assert "joining" in member_writes[0][1].values(), member_writes
    member = es.members(1)["cmp-2"]
    assert member["state"] == "joining"
    assert (member["error_code"], member["error_params"]) == (None, None)
    # The wait is written by the release of the lease, in one UPDATE.
    waits = [sql for sql, params in _updates(seen, "pools")
             if any(k.endswith("waiting") and v for k, v in params.items())]
    assert len(waits) == 1 and "lease_owner=" in waits[0], waits
    pool = db_api.get_pool(1)
    assert pool["lease_owner"] is None
    assert (pool["waiting"]["kind"], pool["waiting"]["host"]) == (
        "wait_member", "cmp-2")
    assert pool["reasons"] == [
        "waiting for cmp-2 to be live and enabled on the master"]


def test_a_pass_reads_the_journal_only_when_a_step_was_left_started(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    _, seen = es.one_pass(engine, 1)
    # (The aggregate's SELECT asks whether one exists, as a subquery.)
    assert not [sql for sql, _ in seen
                if sql.startswith("SELECT operations.")], seen
    # A step another holder left started (it crashed mid-join) is closed
    # by the next pass, which judges the step by observing xapi.
    stale = db_api.journal_start(1, "join", host="cmp-2", owner="crashed",
                                 generation=0)
    assert db_api.get_aggregate_for_pass(1)[1] is True
    assert es.until_settled(engine, 1).converged
    ops = {o["id"]: o for o in es.journal(1)}
    assert ops[stale]["status"] == "abandoned"
    assert db_api.get_aggregate_for_pass(1)[1] is False
    assert len(es.calls(s, "pool.join", s.hosts[1])) == 1


def test_get_aggregate_for_pass_answers_as_get_aggregate(mysql_url):
    assert db_api.get_aggregate_for_pass(404) == (None, False)
    es.want(7, "pool-g", ["cmp-1", "cmp-2"])
    row, unfinished = db_api.get_aggregate_for_pass(7)
    assert row == db_api.get_aggregate(7) and unfinished is False
    op = db_api.journal_start(7, "eject", host="cmp-2", owner="a",
                              generation=1)
    db_api.journal_start(8, "join", host="cmp-9", owner="a", generation=1)
    assert db_api.get_aggregate_for_pass(7) == (db_api.get_aggregate(7), True)
    db_api.journal_finish(op, db_api.OP_SUCCEEDED)
    assert db_api.get_aggregate_for_pass(7)[1] is False


def test_a_pool_says_which_mutation_is_in_flight(sim):
    s = sim(3)
    names = es.register(s)
    es.want(1, "pool-a", names)
    # cmp-3's join is answered 2 s after it arrives, cmp-2's at once.
    s.set_latency(s.hosts[2]["name_label"], 2.0)
    results = []
    runner = threading.Thread(target=lambda: results.append(
        es.engine(es.make_conf()).reconcile_pool(1)))
    runner.start()
    try:
        es.wait_for(lambda: es.calls(s, "pool.join", s.hosts[2]),
                    timeout=30, interval=0.01)
        reasons = db_api.get_pool(1)["reasons"]
    finally:
        runner.join(60)
    # Not the reason of the wait on cmp-2 that ended before this pass.
    assert len(reasons) == 1 and reasons[0].startswith(
        "in progress: pool.join(") and " on cmp-3, " in reasons[0], reasons
    assert results and results[0].converged, results
    assert db_api.get_pool(1)["reasons"] != reasons


def test_a_pool_backing_off_a_transient_error_says_so(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    s.fail_next(s.hosts[1]["name_label"], "pool.join", 1,
                "HOST_STILL_BOOTING", [])
    result, _ = es.one_pass(es.engine(es.make_conf(max_attempts=3)), 1)
    assert result.pending == "retry", result
    [reason] = db_api.get_pool(1)["reasons"]
    assert reason.startswith("transient xapi error on cmp-2 (attempt 1 of "
                             "3), trying again in "), reason
    assert "HOST_STILL_BOOTING" in reason
