"""xapi misbehaving: timeouts, refused connections, lost sessions, a master
changed by hand, PBDs that will not plug, a host going offline mid-join.

The engine runs in-process against the simulator over real XML-RPC and a
real MariaDB. Each fault must end in convergence, or in a clear reason
recorded for operators, and never in a repeated pool.join or pool.eject.
"""

import threading
import time

import pytest
import XenAPI

from poolmgr.db import api as db_api
from tests.functional import engine_support as es


@pytest.fixture
def sim(mysql_url, simulator):
    def make(hosts=3, **kwargs):
        kwargs.setdefault("password", es.PASSWORD)
        return simulator(hosts=hosts, **kwargs)
    return make


def _label(s, index):
    return s.hosts[index]["name_label"]


def _later(seconds, fn, *args):
    timer = threading.Timer(seconds, fn, args)
    timer.daemon = True
    timer.start()
    return timer


def _joins(s, index):
    return len(s.calls("pool.join", _label(s, index)))


def test_timeouts_past_call_timeout_are_retried_without_a_second_join(sim):
    s = sim(3)
    names = es.register(s)
    es.want(1, "slow", names)
    conf = es.make_conf(max_attempts=8, retry_max_backoff=0.5)
    conf.set_override("call_timeout", 1.0, group="xenserver")
    # The joiner answers after 1.5 s: pool.join times out on our side and
    # still takes effect on the host, like a slow real xapi.
    s.set_latency(_label(s, 2), 1.5)
    _later(4.0, s.set_latency, _label(s, 2), 0.0)
    result = _until_converged(es.engine(conf), 1)[-1]
    assert result.converged, result
    assert es.members(1)["cmp-3"]["state"] == "active"
    assert _joins(s, 2) == 1


def _until_converged(engine, aggregate_id, timeout=30.0):
    """Passes as the daemon runs them (it retries after a backoff)."""
    deadline = time.monotonic() + timeout
    results = [engine.reconcile_pool(aggregate_id)]
    while not results[-1].converged and time.monotonic() < deadline:
        time.sleep(0.3)
        results.append(engine.reconcile_pool(aggregate_id))
    return results


def test_connection_refused_in_a_restart_window_is_waited_out(sim):
    s = sim(3)
    names = es.register(s)
    es.want(1, "refused", names[:2])
    engine = es.engine(es.make_conf(max_attempts=2))
    assert engine.reconcile_pool(1).converged
    s.set_offline(_label(s, 0))
    es.want(1, "refused", names)
    # The master refuses connections: the pass says so and joins nothing.
    refused = engine.reconcile_pool(1)
    assert not refused.converged
    assert "unreachable" in " ".join(refused.reasons), refused.reasons
    assert _joins(s, 2) == 0
    s.set_offline(_label(s, 0), False)
    results = _until_converged(engine, 1)
    assert results[-1].converged, results[-1]
    assert _joins(s, 2) == 1 and _joins(s, 1) == 1


def test_session_invalid_logs_in_again(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "sessions", names)
    engine = es.engine(es.make_conf())
    s.fail_next(_label(s, 0), "event.from", count=2, code="SESSION_INVALID",
                params=["OpaqueRef:dead"])
    s.fail_next(_label(s, 1), "pool.join", code="SESSION_INVALID",
                params=["OpaqueRef:dead"])
    result = engine.reconcile_pool(1)
    assert result.converged, result
    # The refused join never reached xapi's pool logic; the retry did once.
    assert es.members(1)["cmp-2"]["state"] == "active"
    # Two pool.join requests reached the host: the refused one, then the
    # same journaled step again after a fresh login.
    assert _joins(s, 1) == 2
    assert [o["status"] for o in es.journal(1, kind="join")] == [
        "succeeded"]
    logins = s.calls("session.login_with_password", _label(s, 0))
    assert len(logins) >= 2


def test_master_changed_by_hand_is_followed_not_undone(sim):
    s = sim(3)
    names = es.register(s)
    es.want(1, "by-hand", names)
    engine = es.engine(es.make_conf())
    assert engine.reconcile_pool(1).converged
    # An operator runs `xe pool-designate-new-master` for the second host.
    session = XenAPI.Session(s.hosts[0]["url"])
    session.xenapi.login_with_password("root", es.PASSWORD, "1.0", "test")
    target = session.xenapi.host.get_by_uuid(s.hosts[1]["uuid"])
    session.xenapi.pool.designate_new_master(target)
    es.wait_for(lambda: s.role(_label(s, 1)) == "master", timeout=20)
    before = len(s.calls())
    db_api.mark_due(1)
    result = engine.reconcile_pool(1)
    assert result.converged, result
    new_calls = [c.method for c in s.calls()[before:]]
    assert "pool.join" not in new_calls and "pool.eject" not in new_calls
    assert all(m["state"] == "active" for m in es.members(1).values())
    assert db_api.get_pool(1)["state"] == "active"


def test_pbd_that_will_not_plug_is_reported_then_repaired(sim):
    s = sim(2)
    names = es.register(s)
    s.create_shared_sr(_label(s, 0), "nfs-shared", "nfs")
    s.set_pbd_plug_failure(_label(s, 1), "nfs-shared",
                           code="SR_BACKEND_FAILURE_73")
    es.want(1, "pbd", names)
    engine = es.engine(es.make_conf(max_attempts=2))
    engine.reconcile_pool(1)
    engine.reconcile_pool(1)
    pool = db_api.get_pool(1)
    assert not pool["live_migration_ready"]
    text = " ".join(pool["reasons"] or []) + " " + str(pool["last_error"])
    assert "nfs-shared" in text and "SR_BACKEND_FAILURE_73" in text, text
    assert _joins(s, 1) == 1
    s.set_pbd_plug_failure(_label(s, 1), "nfs-shared", enabled=False)
    db_api.retry_pool(1)
    result = engine.reconcile_pool(1)
    pool = db_api.get_pool(1)
    assert pool["live_migration_ready"], (result, pool["reasons"])
    assert _joins(s, 1) == 1


def test_simulator_keeps_an_offline_joiner_not_live(sim):
    # Simulator fidelity (found here): a joiner that goes offline inside
    # its restart window must not be reported live by the master when the
    # window ends.
    s = sim(2, join_delay=0.5)
    session = XenAPI.Session(s.hosts[1]["url"])
    session.xenapi.login_with_password("root", es.PASSWORD, "1.0", "test")
    session.xenapi.pool.join(s.hosts[0]["address"], "root", es.PASSWORD)
    s.set_offline(_label(s, 1))
    time.sleep(1.0)
    master = XenAPI.Session(s.hosts[0]["url"])
    master.xenapi.login_with_password("root", es.PASSWORD, "1.0", "test")
    ref = master.xenapi.host.get_by_uuid(s.hosts[1]["uuid"])
    metrics = master.xenapi.host.get_metrics(ref)
    assert master.xenapi.host_metrics.get_live(metrics) is False


def test_host_going_offline_mid_join_is_reported_then_finished(sim):
    s = sim(3, join_delay=0.5)
    names = es.register(s)
    es.want(1, "offline", names)
    conf = es.make_conf(max_attempts=2, retry_max_backoff=0.2)
    conf.set_override("join_timeout", 3.0, group="xenserver")
    conf.set_override("call_timeout", 2.0, group="xenserver")
    engine = es.engine(conf)

    def unplug_when_joining():
        es.wait_for(lambda: _joins(s, 2) == 1, timeout=30, interval=0.01)
        s.set_offline(_label(s, 2))
    watcher = threading.Thread(target=unplug_when_joining, daemon=True)
    watcher.start()
    first = engine.reconcile_pool(1)
    watcher.join(30)
    assert not first.converged
    pool = db_api.get_pool(1)
    assert pool["state"] != "active"
    assert pool["reasons"], pool
    assert es.members(1)["cmp-2"]["state"] == "active"
    s.set_offline(_label(s, 2), False)
    db_api.retry_pool(1)
    result = _until_converged(engine, 1)[-1]
    assert result.converged, result
    assert es.members(1)["cmp-3"]["state"] == "active"
    assert _joins(s, 2) == 1


def test_host_added_during_the_last_look_of_a_pass_is_not_forgotten(
        sim, monkeypatch):
    # Found by the build-out benchmark: a notification stored while a pass
    # was finishing (after its last read of desired state) marked the pool
    # due, and the release of the lease pushed due_at to the next resync.
    from poolmgr.engine import status
    s = sim(3)
    names = es.register(s)
    es.want(1, "late", names[:2])
    real_assess = status.readiness.assess
    injected = []

    def assess_and_meanwhile_nova_adds_a_host(*args, **kwargs):
        if not injected:
            injected.append(True)
            es.want(1, "late", names)
        return real_assess(*args, **kwargs)

    monkeypatch.setattr(status.readiness, "assess",
                        assess_and_meanwhile_nova_adds_a_host)
    conf = es.make_conf(resync_interval=3600.0)
    engine = es.engine(conf)
    engine.reconcile_pool(1)
    assert injected
    assert db_api.list_due_pools() == [1], db_api.get_pool(1)["due_at"]
    monkeypatch.setattr(status.readiness, "assess", real_assess)
    assert engine.reconcile_pool(1).converged
    assert es.members(1)["cmp-3"]["state"] == "active"
