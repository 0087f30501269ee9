"""Bugs an operator walkthrough found in the engine, each reproduced.

Real MariaDB, the simulator over the real XenAPI client, the engine
in-process and ``poolmgr-manage pool plan`` through its entry point.
"""

import time

import pytest

from poolmgr.db import api as db_api
from poolmgr.db import compute_vms
from tests.functional import engine_support as es

# -- a host that left the aggregate, parked in error, still in the pool ------

def test_plan_lists_a_leaving_host_parked_in_error_and_exits_1(sim, manage):
    s = sim(2, compute_vms=True)
    names = es.register(s)
    compute_vms.set_compute_vm(names[1], s.hosts[1]["compute_vm_uuid"])
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    es.until_settled(engine, 1)
    es.want(1, "pool-a", names[:1])
    es.until_settled(engine, 1)
    assert es.members(1)["cmp-2"]["error_code"] == \
        "EJECT_WOULD_DESTROY_COMPUTE_VM"
    result = manage("pool", "plan", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "nothing to do" not in out
    assert "cmp-2: EJECT_WOULD_DESTROY_COMPUTE_VM" in out
    assert "eject_compute_vm = shutdown" in out
    assert "poolmgr-manage pool retry 1 cmp-2" in out


# -- POOL_OWNED_BY_OTHER_AGGREGATE: the fix, once ---------------------------

def test_plan_of_a_host_owned_by_another_aggregate_prints_its_fix_once(
        sim, manage):
    s = sim(3)
    names = es.register(s)
    engine = es.engine(es.make_conf())
    es.want(1, "pool-a", names[:2])
    es.until_settled(engine, 1)
    es.want(2, "pool-c", [names[0], names[2]])
    es.until_settled(engine, 2)
    member = es.members(2)["cmp-1"]
    assert member["error_code"] == "POOL_OWNED_BY_OTHER_AGGREGATE"
    fix = ("remove cmp-1 from aggregate 1 (pool-a) or from aggregate 2 "
           "(pool-c), then `poolmgr-manage pool retry 2 cmp-1`")
    assert "fix: " + fix in member["error_params"]
    result = manage("pool", "plan", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "pool show" not in out
    assert out.count("fix:") == 1
    assert fix in out


# -- a database outage during the lease release: one line -------------------

CLOSED = "mysql+pymysql://root@127.0.0.1:1/poolmgr"


@pytest.fixture
def database_gone_after_the_pass(monkeypatch, mysql_url):
    """The pass runs on MariaDB; then db.api points at a closed port, so
    the lease release meets a real connection failure. Nothing shared
    stops; db.api points back at the test database afterwards."""
    from poolmgr.engine import passes

    real = passes.run_pass

    def run_pass(ctx):
        result = real(ctx)
        db_api.configure_url(CLOSED)
        return result
    monkeypatch.setattr(passes, "run_pass", run_pass)
    yield
    db_api.configure_url(mysql_url)


def test_lease_release_in_a_database_outage_logs_one_line(
        sim, database_gone_after_the_pass, caplog):
    s = sim(1)
    names = es.register(s)
    es.want(1, "pool-a", names)
    caplog.set_level("DEBUG", logger="poolmgr")
    scheduler = es.engine(es.make_conf()).scheduler
    generation, _ = scheduler.acquire_waiting(1)
    scheduler.leased_pass(1, generation, None)
    released = [r for r in caplog.records
                if "could not release the lease" in r.getMessage()]
    assert len(released) == 1
    assert released[0].exc_info is None
    line = released[0].getMessage()
    assert "DBConnectionError (2003)" in line
    assert "\n" not in line
    assert not [r for r in caplog.records if r.exc_info]


# -- a wait whose host cannot be reached says so ----------------------------

def _ejecting_with_a_rotated_certificate(sim):
    s = sim(2, tls=True, eject_delay=0.2)
    names = es.register(s)
    for name, host in zip(names, s.hosts):
        db_api.set_host_fingerprint(name, host["sha256_fingerprint"])
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf(wait_poll_interval=0.05))
    es.until_settled(engine, 1)
    es.want(1, "pool-a", names[:1])
    scheduler = engine.scheduler
    result = scheduler.leased_pass(1, scheduler.acquire_waiting(1)[0], None)
    assert db_api.get_pool(1)["waiting"]["kind"] == "wait_standalone"
    s.rotate_certificate(s.hosts[1]["name_label"])
    return scheduler, result


def _look(scheduler):
    return scheduler.leased_pass(1, scheduler.acquire_waiting(1)[0], None)


def _look_until_back(scheduler):
    """Looks until the ejected host restarted (it refuses connections
    meanwhile) and answers with its new certificate."""
    for _ in range(50):
        _look(scheduler)
        if es.members(1)["cmp-2"]["error_code"] == "TLS_PIN_MISMATCH":
            return
        time.sleep(0.1)


def test_wait_on_an_unreachable_host_records_its_error_and_reason(sim):
    scheduler, _ = _ejecting_with_a_rotated_certificate(sim)
    _look_until_back(scheduler)
    member = es.members(1)["cmp-2"]
    assert member["error_code"] == "TLS_PIN_MISMATCH"
    reasons = db_api.get_pool(1)["reasons"]
    assert len(reasons) == 1
    assert reasons[0].startswith(
        "waiting for cmp-2 to come back standalone: TLS_PIN_MISMATCH")


def test_wait_on_an_unreachable_host_logs_it_once(sim, caplog):
    scheduler, _ = _ejecting_with_a_rotated_certificate(sim)
    caplog.set_level("INFO", logger="poolmgr")
    _look_until_back(scheduler)
    for _ in range(3):
        _look(scheduler)
    said = [r for r in caplog.records
            if "waiting for cmp-2 to come back standalone: TLS_PIN_MISMATCH"
            in r.getMessage()]
    assert len(said) == 1


def test_recorded_wait_replaces_the_reasons_of_the_pass_before(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    es.until_settled(engine, 1)
    db_api.update_pool(1, reasons=["an error already cleared"])
    es.want(1, "pool-a", names[:1])
    scheduler = engine.scheduler
    scheduler.leased_pass(1, scheduler.acquire_waiting(1)[0], None)
    pool = db_api.get_pool(1)
    assert pool["waiting"]["kind"] == "wait_standalone"
    assert pool["reasons"] == ["waiting for cmp-2 to come back standalone"]
