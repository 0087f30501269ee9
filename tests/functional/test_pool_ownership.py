"""One aggregate, one pool: overlapping aggregates never merge xapi pools.

Real MariaDB, the simulator over the real XenAPI client, the engine
in-process. The rule is poolmgr/engine/ownership.py's: a xapi pool belongs
to the managed aggregate with the lowest id among those that contest it.
"""

import threading
import time

import pytest
import sqlalchemy as sa
import XenAPI

from poolmgr.db import api as db_api
from poolmgr.db import session as db_session
from poolmgr.engine import ownership
from tests.functional import engine_support as es

RESYNCS = 6


@pytest.fixture
def sim(mysql_url, simulator):
    def make(hosts=4, **kwargs):
        kwargs.setdefault("password", es.PASSWORD)
        kwargs.setdefault("join_delay", 0.2)
        kwargs.setdefault("eject_delay", 0.2)
        return simulator(hosts=hosts, **kwargs)
    return make


def xapi_pool(s, index):
    """(name_label, master uuid, sorted member uuids) as xapi reports them."""
    session = XenAPI.Session(s.hosts[index]["url"])
    password = s.world.password
    try:
        session.xenapi.login_with_password("root", password, "1.0", "t")
    except XenAPI.Failure as exc:
        if exc.details[0] != "HOST_IS_SLAVE":
            raise
        session = XenAPI.Session("http://%s:%s/" % (
            exc.details[1], s.hosts[index]["url"].rsplit(":", 1)[1]
            .strip("/")))
        session.xenapi.login_with_password("root", password, "1.0", "t")
    try:
        pool = list(session.xenapi.pool.get_all_records().values())[0]
        hosts = session.xenapi.host.get_all_records()
        return (pool["name_label"], hosts[pool["master"]]["uuid"],
                sorted(h["uuid"] for h in hosts.values()))
    finally:
        session.xenapi.session.logout()


def until_converged(engine, aggregate_id, passes=20):
    for _ in range(passes):
        result = engine.reconcile_pool(aggregate_id)
        if result.converged and result.pending is None:
            return result
    return result


def _pool_a_active(s, engine):
    names = es.register(s)
    es.want(1, "pool-a", names[:2])
    assert until_converged(engine, 1).converged
    assert db_api.get_pool(1)["state"] == "active"
    return names


def test_overlapping_aggregate_leaves_the_owners_pool_exactly_as_it_was(sim):
    s = sim(4)
    engine = es.engine(es.make_conf())
    names = _pool_a_active(s, engine)
    before = xapi_pool(s, 0)
    assert before[0] == "pool-a"
    assert len(before[2]) == 2
    ops_before = len(es.journal(1))
    es.want(2, "pool-c", [names[0], names[2]])
    for _ in range(RESYNCS):
        until_converged(engine, 2)
        db_api.mark_due(1)
        until_converged(engine, 1)
        # pool-a's xapi pool: same name, master and members.
        assert xapi_pool(s, 0) == before
        assert xapi_pool(s, 1) == before
        member = es.members(2)["cmp-1"]
        assert member["state"] == "error"
        assert member["error_code"] == ownership.OWNED_CODE
        assert "aggregate 1 (pool-a)" in " ".join(member["error_params"])
        assert db_api.get_pool(1)["state"] == "active"
        assert db_api.get_pool(2)["state"] == "error"
        db_api.mark_due(2)
    # Aggregate 1 never acted again; aggregate 2 never touched its pool.
    assert len(es.journal(1)) == ops_before
    pool_a_uuid = s.pool_uuid(s.hosts[0]["name_label"])
    assert db_api.get_pool(1)["pool_uuid"] == pool_a_uuid
    assert db_api.get_pool(2)["pool_uuid"] != pool_a_uuid
    assert es.calls(s, "pool.join", s.hosts[2]) == []
    assert es.calls(s, "pool.eject") == []
    # xs03 is aggregate 2's own (one-host) pool, named after it.
    assert xapi_pool(s, 2)[0] == "pool-c"


def test_contested_host_reason_names_the_owner_and_the_fix(sim):
    s = sim(4)
    engine = es.engine(es.make_conf())
    names = _pool_a_active(s, engine)
    es.want(2, "pool-c", [names[0], names[2]])
    until_converged(engine, 2)
    reasons = " ".join(db_api.get_pool(2)["reasons"])
    assert "aggregate 1 (pool-a)" in reasons
    assert "poolmgr-manage pool retry 2 cmp-1" in reasons
    assert "not a registered compute host" not in reasons


def test_lower_id_owns_a_contested_host_whatever_order_passes_run(sim):
    # Neither aggregate has a pool yet; aggregate 2's pass runs first.
    s = sim(3)
    names = es.register(s)
    engine = es.engine(es.make_conf())
    es.want(2, "pool-c", [names[0], names[2]])
    es.want(1, "pool-a", [names[0], names[1]])
    until_converged(engine, 2)
    until_converged(engine, 1)
    assert es.members(2)["cmp-1"]["state"] == "error"
    assert {h: m["state"] for h, m in es.members(1).items()} == {
        "cmp-1": "active", "cmp-2": "active"}
    assert xapi_pool(s, 0)[0] == "pool-a"
    assert es.calls(s, "pool.join", s.hosts[2]) == []


def test_older_aggregate_wanting_one_host_never_takes_a_pool_over(sim):
    # Aggregate 5 formed its pool first; aggregate 2 (older, lower id)
    # then wants one of its hosts: owning it would merge cmp-2 into it.
    s = sim(3)
    names = es.register(s)
    engine = es.engine(es.make_conf())
    es.want(5, "pool-e", names[:2])
    assert until_converged(engine, 5).converged
    before = xapi_pool(s, 0)
    es.want(2, "pool-b", [names[0], names[2]])
    for _ in range(3):
        until_converged(engine, 2)
        db_api.mark_due(5)
        until_converged(engine, 5)
    assert xapi_pool(s, 0) == before
    assert db_api.get_pool(5)["state"] == "active"
    member = es.members(2)["cmp-1"]
    assert member["state"] == "error"
    assert "owned by aggregate 5 (pool-e)" in member["error_params"]


def test_a_recorded_pool_an_older_aggregate_now_owns_gets_no_join(sim):
    # Aggregate 5 formed cmp-1 + cmp-2 and recorded the pool; then it
    # wants cmp-3 too, and aggregate 2 (older) wants cmp-1 and cmp-2: all
    # of that pool's wanted hosts, so aggregate 2 owns it. Aggregate 5's
    # pass checks its recorded pool with cmp-3 (NOTE(one-check)) and must
    # not join cmp-3 into a pool that is no longer its own.
    s = sim(3)
    names = es.register(s)
    engine = es.engine(es.make_conf())
    es.want(5, "pool-e", names[:2])
    assert until_converged(engine, 5).converged
    es.want(2, "pool-b", names[:2])
    es.want(5, "pool-e", names)
    until_converged(engine, 5)
    assert es.calls(s, "pool.join", s.hosts[2]) == []
    assert es.members(5)["cmp-1"]["state"] == "error"
    assert "owned by aggregate 2 (pool-b)" in \
        es.members(5)["cmp-1"]["error_params"]
    until_converged(engine, 2)
    assert db_api.get_pool(2)["state"] == "active"
    assert xapi_pool(s, 0)[0] == "pool-b"


def test_pool_formed_before_the_older_aggregate_arrived_is_not_merged(sim):
    # Aggregate 2's notifications came first: it formed cmp-1 + cmp-3.
    # Aggregate 1 then wants cmp-1 and cmp-2: it cannot own that pool
    # without taking in cmp-3, so aggregate 2 keeps it, unchanged.
    s = sim(3)
    names = es.register(s)
    engine = es.engine(es.make_conf())
    es.want(2, "pool-c", [names[0], names[2]])
    assert until_converged(engine, 2).converged
    before = xapi_pool(s, 0)
    assert len(before[2]) == 2
    es.want(1, "pool-a", names[:2])
    for _ in range(3):
        until_converged(engine, 1)
        db_api.mark_due(2)
        until_converged(engine, 2)
    assert xapi_pool(s, 0) == before
    assert es.members(1)["cmp-1"]["state"] == "error"
    assert "owned by aggregate 2 (pool-c)" in \
        es.members(1)["cmp-1"]["error_params"]
    assert es.calls(s, "pool.join", s.hosts[1]) == []


def test_host_of_an_unmanaged_aggregate_pool_is_not_claimed(sim):
    # Only flagged aggregates contest: an unflagged one does not hold
    # on to its hosts' pools.
    s = sim(2)
    names = es.register(s)
    engine = es.engine(es.make_conf())
    es.want(1, "plain", names, flagged=False)
    es.want(2, "pool-b", names)
    assert until_converged(engine, 2).converged
    assert db_api.get_pool(2)["state"] == "active"


DAEMON = ("[reconciler]\npoll_interval = 0.2\nlease_time = 5\n"
          "retry_initial_backoff = 0.1\nretry_max_backoff = 1\n"
          "resync_interval = 1\nwait_poll_interval = 0.2\n")


def test_overlap_through_the_daemon_over_five_resyncs(sim, bus,
                                                      daemon_factory):
    # The reproduction as an operator ran it: Nova's notifications
    # over RabbitMQ, the daemon, 4 hosts.
    from tests.functional import daemon_support as support
    s = sim(4, password=support.XAPI_SECRET)
    names = es.register(s)
    daemon_factory(extra=DAEMON).start()
    nova = bus.nova()
    agg1 = nova.create_aggregate("pool-a")
    nova.set_metadata(agg1, {"hypervisor_pool": "true"})
    for host in names[:2]:
        nova.add_host(agg1, host)
    support.wait_for(lambda: (db_api.get_pool(agg1) or {}).get("state")
                     == "active", timeout=60, what="pool-a active")
    before = xapi_pool(s, 0)
    agg2 = nova.create_aggregate("pool-c")
    nova.set_metadata(agg2, {"hypervisor_pool": "true"})
    for host in (names[0], names[2]):
        nova.add_host(agg2, host)
    support.wait_for(lambda: es.members(agg2).get("cmp-1", {}).get("state")
                     == "error", timeout=60, what="pool-c's cmp-1 in error")
    seen = {agg1: set(), agg2: set()}

    def five_resyncs_each():
        for agg in seen:
            seen[agg].add(db_api.get_pool(agg)["last_reconciled_at"])
        assert xapi_pool(s, 0) == before
        member = es.members(agg2)["cmp-1"]
        assert member["state"] == "error"
        assert "aggregate %d (pool-a)" % agg1 in " ".join(
            member["error_params"])
        return all(len(stamps) >= 6 for stamps in seen.values())

    support.wait_for(five_resyncs_each, timeout=60, interval=0.3,
                     what="five resync passes of each aggregate")
    assert db_api.get_pool(agg1)["state"] == "active"
    assert not [o for o in es.journal(agg1)
                if o["kind"] == "set_name_label"][1:]
    assert es.calls(s, "pool.join", s.hosts[2]) == []


def _innodb_deadlocks(connection):
    return int(connection.execute(sa.text(
        "SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")).fetchone()[1])


def test_two_pools_recorded_at_once_do_not_deadlock(mysql_url):
    # NOTE(gap-lock) in db/pools.py: claim_pool_uuid used to let go of the
    # new uuid with an UPDATE matching no row, which locks the unique
    # index's gap; a second first pass doing the same held that gap too,
    # and each waited for the other's: a deadlock, retried a second later.
    for aggregate_id in (1, 2):
        db_api.put_aggregate(aggregate_id, "pool-%d" % aggregate_id, [],
                             {"hypervisor_pool": "true"})
    engine = db_session.get_engine()
    with engine.connect() as probe:
        before = _innodb_deadlocks(probe)
    other = engine.connect()
    done = {}
    try:
        # Another transaction, the old way, recording pool 2's new uuid:
        # the range UPDATE first (its gap lock held until commit).
        other.execute(sa.text(
            "UPDATE pools SET pool_uuid = NULL WHERE pool_uuid = 'uuid-b' "
            "AND aggregate_id != 2"))

        def claim():
            try:
                db_api.claim_pool_uuid(1, "uuid-a")
                done["ok"] = True
            except Exception as exc:  # noqa: BLE001 - reported below
                done["error"] = exc

        thread = threading.Thread(target=claim)
        thread.start()
        time.sleep(0.3)
        other.execute(sa.text(
            "UPDATE pools SET pool_uuid = 'uuid-b' WHERE aggregate_id = 2"))
        other.commit()
        thread.join(timeout=30)
    finally:
        other.close()
    assert done == {"ok": True}
    with engine.connect() as probe:
        assert _innodb_deadlocks(probe) == before
    assert db_api.get_pool(1)["pool_uuid"] == "uuid-a"
    assert db_api.get_pool(2)["pool_uuid"] == "uuid-b"
