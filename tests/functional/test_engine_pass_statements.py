"""What a pass costs, counted: its SQL statements and its xapi calls.

Real MariaDB, the simulator over real XML-RPC, the engine in-process
(``benchmarks/bench_buildout.py`` counts the same in the daemon:
sql_statements_per_join, sql_statements_per_idle_pass,
xapi_calls_per_join). Each test names the statements or calls it expects.
"""

import collections

from poolmgr.db import api as db_api
from tests.functional import engine_support as es


def _built(sim, hosts=3):
    s = sim(hosts)
    es.want(1, "pool-a", es.register(s))
    engine = es.engine(es.make_conf())
    assert engine.reconcile_pool(1).converged
    return s, engine


def test_an_idle_resync_pass_reads_once_and_writes_with_the_release(sim):
    s, engine = _built(sim)
    before = db_api.get_pool(1)
    result, seen = es.one_pass(engine, 1)
    assert result.converged and result.state == "active", result
    # One read of the pool with its aggregate, members and hosts
    # (NOTE(one-read)), the ownership of the pool seen on the master, and
    # the release, which writes the pass's state (NOTE(settled-rows),
    # NOTE(release-write) in status.finish). With the lease's acquisition
    # that is four statements a pass.
    kinds = [sql.split(" WHERE ")[0][:40] for sql, _ in seen]
    assert len(seen) == 3, kinds
    assert seen[0][0].startswith("SELECT pools.aggregate_id AS p_"), kinds
    release = seen[-1][0]
    assert release.startswith("UPDATE pools SET ") and \
        "lease_owner=" in release and "last_reconciled_at=" in release, \
        release
    after = db_api.get_pool(1)
    assert after["lease_owner"] is None
    assert after["last_reconciled_at"] > before["last_reconciled_at"]
    for key in ("state", "live_migration_ready", "reasons", "sr_matrix"):
        assert after[key] == before[key], key
    assert len(es.calls(s, "event.from")) >= 1


def test_a_pass_that_lost_its_lease_writes_no_state(sim):
    _, engine = _built(sim)
    db_api.update_pool(1, reasons=["written by the next holder"])
    before = db_api.get_pool(1)
    generation, _ = engine.scheduler.acquire_waiting(1)
    # Another engine takes the pool (this one's lease expired meanwhile).
    db_api.update_pool(1, lease_expires_at=db_api._now())
    assert db_api.acquire_lease(1, "other-engine", 30) == generation + 1
    engine.scheduler.leased_pass(1, generation, None)
    after = db_api.get_pool(1)
    assert after["reasons"] == ["written by the next holder"]
    assert after["last_reconciled_at"] == before["last_reconciled_at"]
    assert after["lease_owner"] == "other-engine"


def test_a_build_reads_the_master_once_per_join_and_clears_waits_with_the_release(  # noqa: E501
        sim):
    s = sim(3)
    es.want(1, "pool-a", es.register(s))
    engine = es.engine(es.make_conf())
    with es.statements() as seen:
        assert engine.reconcile_pool(1).converged
    calls = collections.Counter(c.method for c in s.call_log)
    # What a join needs (doc/source/benchmarks.rst): on the joiner a login,
    # one event.from and pool.join; on the master the event.from that
    # shows it complete (NOTE(fresh-look): the pass after the look
    # observes from that snapshot). Per pool: the master's login, its
    # first event.from and pool.set_name_label.
    assert calls == {"session.login_with_password": 3, "event.from": 5,
                     "pool.join": 2, "pool.set_name_label": 1}, calls
    # The wait a look found over is cleared by the release of the lease,
    # not by an UPDATE of its own.
    assert not [sql for sql, _ in seen
                if sql.startswith("UPDATE pools SET waiting=")], seen
    assert db_api.get_pool(1)["waiting"] is None
    # Ownership (engine.ownership): the first pass checks the master's pool
    # and the first joiner apart (the pool is not recorded yet); a later
    # pass checks the recorded pool with its joiner in one SELECT
    # (NOTE(one-check)); the last pass, with no host left to join, the
    # pool alone.
    claimants = [sql for sql, _ in seen
                 if sql.startswith("SELECT aggregates.id, aggregates.name, ")]
    assert len(claimants) == 4, claimants
    # The member joined last is written active with the next joiner's
    # ``joining``, in one UPDATE (NOTE(members-write)): one a pass.
    member_writes = [sql for sql, _ in seen
                     if sql.startswith("UPDATE pool_members ")]
    assert len(member_writes) == 3, member_writes
    members = es.members(1)
    assert {h: (m["state"], m["xenserver_uuid"], m["error_code"],
                m["attempts"]) for h, m in members.items()} == {
        "cmp-%d" % (i + 1): ("active", s.hosts[i]["uuid"], None, 0)
        for i in range(3)}


def test_read_for_pass_answers_as_the_single_reads(mysql_url):
    assert db_api.read_for_pass(404) == db_api.PassRead()
    db_api.register_host("cmp-1", "http://192.0.2.1")
    db_api.register_host("cmp-2", "http://192.0.2.2")
    es.want(7, "pool-g", ["cmp-1", "cmp-2", "cmp-3"])
    db_api.add_members(7, ["cmp-2", "cmp-3", "cmp-1"])
    db_api.upsert_member(7, "cmp-3", state=db_api.MEMBER_ERROR,
                         error_code="X", error_params=["y"])
    db_api.update_pool(7, waiting={"kind": "wait_member", "host": "cmp-2"})
    db_api.journal_start(7, "join", host="cmp-2", owner="a", generation=1)
    es.want(8, "pool-h", ["cmp-9"])
    read = db_api.read_for_pass(7)
    assert read.pool == db_api.get_pool(7)
    assert (read.aggregate, read.unfinished) == \
        db_api.get_aggregate_for_pass(7)
    assert read.members == db_api.list_members(7)
    assert read.hosts == db_api.get_hosts(["cmp-1", "cmp-2", "cmp-3"])
    assert read.looked_up == {"cmp-1", "cmp-2", "cmp-3"}
    # A pool with no member yet.
    empty = db_api.read_for_pass(8)
    assert empty.pool == db_api.get_pool(8) and empty.members == []
    assert (empty.aggregate, empty.unfinished) == \
        db_api.get_aggregate_for_pass(8)
