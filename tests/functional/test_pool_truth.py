"""States, reasons and the dry run tell the truth.

Real MariaDB, the simulator over real XML-RPC, the engine in-process and
``poolmgr-manage pool plan`` through its entry point.
"""


import XenAPI

from poolmgr.db import api as db_api
from tests.functional import engine_support as es

def _pool_with_a_parked_host(s):
    """cmp-1 + cmp-2 form the pool; cmp-3 runs a VM and has another CPU."""
    names = es.register(s)
    s.create_running_vm(s.hosts[2]["name_label"], "db-1")
    s.set_cpu_vendor(s.hosts[2]["name_label"], "AuthenticAMD")
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    es.until_settled(engine, 1)
    assert es.members(1)["cmp-3"]["state"] == "error"
    return engine


def test_pool_with_a_desired_host_parked_in_error_is_error_not_active(sim):
    s = sim(3)
    _pool_with_a_parked_host(s)
    pool = db_api.get_pool(1)
    assert pool["state"] == "error"
    assert any(r.startswith("cmp-3 in error: ") for r in pool["reasons"])


def test_pool_is_active_only_when_every_desired_host_is_an_active_member(
        sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    es.until_settled(engine, 1)
    assert db_api.get_pool(1)["state"] == "active"
    assert {m["state"] for m in es.members(1).values()} == {"active"}


def test_retried_host_that_still_fails_puts_the_pool_back_in_error(sim):
    s = sim(3)
    engine = _pool_with_a_parked_host(s)
    s.set_cpu_vendor(s.hosts[2]["name_label"], "GenuineIntel")
    db_api.retry_pool(1, "cmp-3")
    es.until_settled(engine, 1)
    # Still a running VM: parked again, still error.
    assert db_api.get_pool(1)["state"] == "error"


def test_plan_lists_a_parked_host_with_every_failing_check_and_exits_1(
        sim, manage):
    s = sim(3)
    _pool_with_a_parked_host(s)
    result = manage("pool", "plan", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "nothing to do" not in out
    assert "cmp-3: JOINING_HOST_CANNOT_HAVE_RUNNING_VMS" in out
    assert "cmp-3: HOSTS_NOT_HOMOGENEOUS" in out
    assert "poolmgr-manage pool retry 1 cmp-3" in out


def test_plan_with_the_master_offline_says_so(sim, manage):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    es.until_settled(es.engine(es.make_conf()), 1)
    s.set_offline(s.hosts[0]["name_label"])
    result = manage("pool", "plan", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "None:" not in out
    assert "cmp-1: MASTER_UNREACHABLE" in out
    assert "member of another pool" not in out
    assert "cmp-2 is a member of this pool; its master cmp-1" in out


def test_member_whose_master_is_offline_is_not_in_another_pool(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf(max_attempts=1))
    es.until_settled(engine, 1)
    s.set_offline(s.hosts[0]["name_label"])
    engine.reconcile_pool(1)
    reasons = " ".join(db_api.get_pool(1)["reasons"])
    assert "member of another pool" not in reasons
    # NOTE(master-lost): its members answer, so the pool says its master
    # does not answer (engine/failover.py), not that cmp-2 is elsewhere.
    assert "pool master cmp-1 (%s" % s.hosts[0]["address"] in reasons
    assert "members answering (slave-local login): cmp-2" in reasons


def test_registered_host_joined_by_hand_is_not_called_unregistered(sim):
    s = sim(3)
    names = es.register(s)
    es.want(1, "pool-a", names[:2])
    engine = es.engine(es.make_conf())
    es.until_settled(engine, 1)
    # An operator joins cmp-3 (registered, in no aggregate) by hand.
    session = XenAPI.Session(s.hosts[2]["url"])
    session.xenapi.login_with_password("root", es.PASSWORD, "1.0", "test")
    session.xenapi.pool.join(s.hosts[0]["address"], "root", es.PASSWORD)
    es.wait_for(lambda: s.role(s.hosts[2]["name_label"]) == "slave",
                timeout=20)
    db_api.mark_due(1)
    engine.reconcile_pool(1)
    reasons = " ".join(db_api.get_pool(1)["reasons"])
    assert "not a registered compute host" not in reasons
    assert "is registered compute host cmp-3 but is not in this " \
        "aggregate" in reasons


# -- a code recorded on an active member is cleared when it is healthy again


def _member_updates(engine, aggregate_id):
    """UPDATE statements on pool_members during one pass, and the result."""
    import sqlalchemy as sa
    seen = []

    def listen(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE POOL_MEMBERS"):
            seen.append(statement)
    engine_ = db_api.get_engine()
    sa.event.listen(engine_, "before_cursor_execute", listen)
    try:
        result = engine.reconcile_pool(aggregate_id)
    finally:
        sa.event.remove(engine_, "before_cursor_execute", listen)
    return seen, result


def test_code_on_an_active_member_is_cleared_once_it_is_healthy(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    assert es.until_settled(engine, 1).converged
    # What the 'blocked' step records on a member it does not park (e.g.
    # TLS_PIN_MISMATCH while its certificate was rotated).
    db_api.upsert_member(1, "cmp-2", error_code="TLS_PIN_MISMATCH",
                         error_params=["old", "new"])
    result = engine.reconcile_pool(1)
    member = es.members(1)["cmp-2"]
    assert (member["state"], member["error_code"], member["error_params"]) \
        == ("active", None, None), (result, member)


def test_a_steady_pass_writes_no_member_row(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    assert es.until_settled(engine, 1).converged
    updates, result = _member_updates(engine, 1)
    assert result.converged
    assert updates == []


def test_member_whose_pbd_will_not_plug_stays_in_error_over_passes(sim):
    s = sim(2)
    names = es.register(s)
    s.create_shared_sr(s.hosts[0]["name_label"], "nfs-shared", "nfs")
    s.set_pbd_plug_failure(s.hosts[1]["name_label"], "nfs-shared",
                           code="SR_BACKEND_FAILURE_73")
    es.want(1, "pbd", names)
    engine = es.engine(es.make_conf(max_attempts=1))
    es.until_settled(engine, 1)
    assert es.members(1)["cmp-2"]["state"] == "error"
    plugs = len(s.calls("PBD.plug"))
    states = []
    for _ in range(4):
        engine.reconcile_pool(1)
        member = es.members(1)["cmp-2"]
        states.append((member["state"], member["error_code"]))
    assert states == [("error", "SR_BACKEND_FAILURE_73")] * 4
    assert len(s.calls("PBD.plug")) == plugs
    assert db_api.get_pool(1)["state"] == "error"


def test_member_in_error_whose_pbd_was_plugged_by_hand_is_active_again(sim):
    s = sim(2)
    names = es.register(s)
    s.create_shared_sr(s.hosts[0]["name_label"], "nfs-shared", "nfs")
    s.set_pbd_plug_failure(s.hosts[1]["name_label"], "nfs-shared",
                           code="SR_BACKEND_FAILURE_73")
    es.want(1, "pbd", names)
    engine = es.engine(es.make_conf(max_attempts=1))
    es.until_settled(engine, 1)
    assert es.members(1)["cmp-2"]["state"] == "error"
    s.set_pbd_plug_failure(s.hosts[1]["name_label"], "nfs-shared",
                           enabled=False)
    session = XenAPI.Session(s.hosts[0]["url"])
    session.xenapi.login_with_password("root", es.PASSWORD, "1.0", "test")
    for ref, pbd in session.xenapi.PBD.get_all_records().items():
        if not pbd["currently_attached"]:
            session.xenapi.PBD.plug(ref)
    result = es.until_settled(engine, 1)
    member = es.members(1)["cmp-2"]
    assert (member["state"], member["error_code"]) == ("active", None)
    assert result.converged and db_api.get_pool(1)["live_migration_ready"]
