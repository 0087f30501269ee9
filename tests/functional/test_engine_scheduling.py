"""Waits as due times, backoff as due times, event.from deltas (issue 10).

The engine runs in-process against MariaDB and the simulator over real
XML-RPC. A pass never sleeps: a waiting pool and a pool backing off hold
no thread and no lease; observation asks the master only for what changed
since the token, and falls back to a full read when the token says
nothing reliable any more.
"""

import contextlib
import datetime
import threading
import time

import pytest
import XenAPI

from poolmgr.db import api as db_api
from poolmgr.engine import scheduler as scheduler_mod
from poolmgr.engine import status
from tests.functional import engine_support as es


@contextlib.contextmanager
def running(engine):
    stop = threading.Event()
    thread = threading.Thread(target=engine.run_forever, args=(stop,),
                              daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        stop.set()
        engine.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()


def one_pass(engine, aggregate_id):
    """One pass as the daemon's scheduler runs it (lease, pass, release)."""
    generation = db_api.acquire_lease(aggregate_id, engine.owner,
                                      engine.conf.reconciler.lease_time)
    assert generation is not None
    return engine.scheduler.leased_pass(aggregate_id, generation, None)


def passes_until(engine, aggregate_id, pending, limit=20):
    for _ in range(limit):
        result = one_pass(engine, aggregate_id)
        if result.pending == pending:
            return result
    raise AssertionError("no pass ended %r" % pending)


def seconds_until_due(aggregate_id):
    due = db_api.get_pool(aggregate_id)["due_at"]
    return (due - datetime.datetime.utcnow()).total_seconds()


def event_from_tokens(s, host_index):
    """The token of every event.from call the host received, in order."""
    return [c.params[1] for c in es.calls(s, "event.from",
                                          s.hosts[host_index])]


@pytest.mark.parametrize("wait_threads", [64, 0],
                         ids=["look-threads", "looks-on-pass-threads"])
def test_pool_waiting_on_a_slow_join_does_not_delay_another_pools_join(
        sim, wait_threads):
    slow = sim(2, join_delay=6.0)
    fast = sim(2, join_delay=0.2)
    es.register(slow, prefix="slow")
    es.register(fast, prefix="fast")
    es.want(1, "slow-pool", ["slow-1", "slow-2"])
    es.want(2, "fast-pool", ["fast-1", "fast-2"])
    engine = es.engine(es.make_conf(threads=1, wait_threads=wait_threads))
    with running(engine):
        es.wait_for(lambda: es.calls(slow, "pool.join"), timeout=20)
        es.wait_for(lambda: db_api.get_pool(2)["state"] == "active",
                    timeout=20)
        # The fast pool joined and converged inside the slow join's window,
        # on the engine's only thread.
        assert es.members(1)["slow-2"]["state"] == "joining"
        waiting = db_api.get_pool(1)["waiting"]
        assert (waiting["kind"], waiting["host"]) == ("wait_member",
                                                      "slow-2")
        es.wait_for(lambda: db_api.get_pool(1)["state"] == "active",
                    timeout=30)
    assert db_api.get_pool(1)["waiting"] is None
    assert len(es.calls(slow, "pool.join")) == 1


@pytest.mark.parametrize("wait_threads", [64, 0])
def test_a_join_is_first_looked_at_after_wait_poll_interval(sim,
                                                             wait_threads):
    """On look threads or not, the first look is due after
    wait_poll_interval (due at once, the engine that released the pool won
    it from every other engine)."""
    s = sim(2, join_delay=3.0)
    es.want(1, "pool-a", es.register(s))
    engine = es.engine(es.make_conf(wait_threads=wait_threads,
                                    wait_poll_interval=1.0))
    passes_until(engine, 1, "wait")
    assert db_api.get_pool(1)["waiting"]["kind"] == "wait_member"
    left = seconds_until_due(1)
    assert 0.5 < left <= 1.0, left


def test_the_first_look_is_counted_from_the_join_not_the_pass_end(
        sim, monkeypatch):
    """NOTE(since) in engine/waits.py: what the pass writes after
    pool.join returned (the journal, the wait) does not push the first look
    later."""
    s = sim(2, join_delay=3.0)
    es.want(1, "pool-a", es.register(s))
    engine = es.engine(es.make_conf(wait_poll_interval=1.0))
    real_update = db_api.update_pool

    def slow_wait_record(aggregate_id, **fields):
        if fields.get("waiting"):
            # A busy database between the join and the end of the pass.
            time.sleep(0.6)
        return real_update(aggregate_id, **fields)

    monkeypatch.setattr(db_api, "update_pool", slow_wait_record)
    passes_until(engine, 1, "wait")
    join = es.journal(1, kind="join")[-1]
    due = db_api.get_pool(1)["due_at"]
    # The call returned before its row was finished: the look is due at
    # most wait_poll_interval after that, never 0.6 s more.
    assert due <= join["finished_at"] + datetime.timedelta(seconds=1.05), (
        due - join["finished_at"])
    assert due >= join["started_at"] + datetime.timedelta(seconds=0.9)


def test_transient_error_backs_off_without_holding_the_lease(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    conf = es.make_conf(retry_initial_backoff=5.0, retry_max_backoff=60.0)
    first = es.engine(conf, owner="engine-a")
    s.fail_next(s.hosts[1]["name_label"], "pool.join", count=1,
                code="HOST_STILL_BOOTING", params=[])
    result = passes_until(first, 1, "retry")
    assert "HOST_STILL_BOOTING" in " ".join(result.reasons)
    pool = db_api.get_pool(1)
    assert pool["lease_owner"] is None
    assert seconds_until_due(1) > 3.0
    assert es.members(1)["cmp-2"]["attempts"] == 1
    # Meanwhile another engine may take the pool (and finish the join).
    second = es.engine(conf, owner="engine-b")
    assert second.reconcile_pool(1).converged
    joins = [(o["owner"], o["status"]) for o in es.journal(1, kind="join")]
    assert joins == [("engine-a", "failed"), ("engine-b", "succeeded")]
    assert es.members(1)["cmp-2"]["state"] == "active"


def test_blocked_step_without_a_host_backs_off(sim):
    s = sim(3)
    names = es.register(s)
    es.want(1, "pool-a", names[:2])
    conf = es.make_conf(retry_initial_backoff=1.0, retry_max_backoff=60.0)
    engine = es.engine(conf)
    assert engine.reconcile_pool(1).converged
    # A host poolmgr does not know joins the pool by hand.
    db_api.remove_host("cmp-3")
    client = XenAPI.Session(s.hosts[2]["url"])
    client.xenapi.login_with_password("root", es.PASSWORD, "1.0", "test")
    client.xenapi.pool.join(s.hosts[0]["address"], "root", es.PASSWORD)
    es.wait_for(lambda: s.master_of(s.hosts[2]) == s.hosts[0]["name_label"],
                timeout=10)
    delays = []
    for _ in range(3):
        db_api.mark_due(1)    # as the scheduler claims it: when due
        result = one_pass(engine, 1)
        assert not result.converged and result.pending is None
        assert "not a registered compute host" in " ".join(result.reasons)
        delays.append(seconds_until_due(1))
    assert db_api.get_pool(1)["attempts"] == 3
    # 1 s, 2 s, 4 s: the backoff grows with the pool's own attempts.
    assert delays[0] < delays[1] < delays[2]
    assert delays[2] > 3.0


def test_converged_resync_asks_the_master_only_for_changes(sim):
    s = sim(3)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    assert engine.reconcile_pool(1).converged
    s.reset_call_log()
    assert engine.reconcile_pool(1).converged
    calls = s.calls()
    assert [c.method for c in calls] == ["event.from"]
    classes, token, timeout = calls[0].params
    assert token != "" and float(timeout) == 0.0


def test_events_lost_falls_back_to_a_full_read(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    assert engine.reconcile_pool(1).converged
    assert engine.reconcile_pool(1).converged
    s.reset_call_log()
    s.fail_next(s.hosts[0]["name_label"], "event.from", count=1,
                code="EVENTS_LOST", params=[])
    assert engine.reconcile_pool(1).converged
    tokens = event_from_tokens(s, 0)
    assert len(tokens) == 2 and tokens[0] != "" and tokens[1] == ""
    assert engine.feeds.get(1).last_reset == "EVENTS_LOST"


def test_master_change_falls_back_to_a_full_read(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "pool-a", names)
    engine = es.engine(es.make_conf())
    assert engine.reconcile_pool(1).converged
    assert engine.reconcile_pool(1).converged
    full_reads = engine.feeds.get(1).full_reads
    client = XenAPI.Session(s.hosts[0]["url"])
    client.xenapi.login_with_password("root", es.PASSWORD, "1.0", "test")
    try:
        ref = client.xenapi.host.get_by_uuid(s.hosts[1]["uuid"])
        client.xenapi.pool.designate_new_master(ref)
    finally:
        with contextlib.suppress(Exception):
            client.xenapi.session.logout()
    es.wait_for(lambda: s.role(s.hosts[1]["name_label"]) == "master"
                and s.role(s.hosts[0]["name_label"]) == "slave", timeout=10)
    s.reset_call_log()
    db_api.mark_due(1)
    assert engine.reconcile_pool(1).converged
    assert db_api.get_pool(1)["master"] == "cmp-2"
    # The delta was followed to the new master (HOST_IS_SLAVE), and the
    # answer thrown away for a full read there.
    assert event_from_tokens(s, 1)[-1] == ""
    feed = engine.feeds.get(1)
    assert feed.full_reads == full_reads + 1
    assert feed.last_reset == "master changed"


def test_a_look_never_long_polls_past_its_lease(sim, caplog):
    """wait_long_poll longer than the lease: each look waits on the master
    for at most half of what is left of the lease (a look that outlasted it
    let another engine take the pool mid-look), and the pool converges."""

    from poolmgr.engine import context

    conf = es.make_conf(lease_time=2.0, wait_long_poll=10.0)
    ctx = context.PassContext(1, 1, conf=conf)
    ctx.last_renew = time.monotonic()
    with ctx.long_poll() as budget:
        assert 0.9 < budget <= 1.0, budget
    ctx.last_renew = time.monotonic() - 1.9
    with ctx.long_poll() as budget:
        assert budget <= 0.05, budget
    s = sim(2, join_delay=3.0)
    es.want(1, "pool-a", es.register(s))
    engine = es.engine(conf)
    caplog.set_level("WARNING", logger="poolmgr")
    with running(engine):
        es.wait_for(lambda: db_api.get_pool(1)["state"] == "active",
                    timeout=30)
    assert not [r for r in caplog.records
                if "lease lost" in r.getMessage()]
    assert len(es.calls(s, "pool.join")) == 1


def bare_scheduler(conf, wake=None):
    """A scheduler whose loop is not running: the test calls its parts."""
    return scheduler_mod.Scheduler(conf, "me", sessions=None,
                                   stopping=threading.Event(),
                                   wake=wake or threading.Event())


class _HeldExecutor:
    """An executor whose work never runs: the test finishes each future."""

    def __init__(self):
        self.futures = {}

    def submit(self, fn, aggregate_id, *args):
        import concurrent.futures
        future = concurrent.futures.Future()
        self.futures[aggregate_id] = future
        return future


def test_a_thread_that_frees_while_due_pools_wait_wakes_the_loop(mysql_url):
    conf = es.make_conf(threads=2, wait_threads=1, poll_interval=30.0)
    for n in range(5):
        es.want(n + 1, "pool-%d" % n, ["h-%d" % n])
    wake = threading.Event()
    sched = bare_scheduler(conf, wake)
    executor = _HeldExecutor()
    sched._claim(executor, conf.reconciler.threads)
    first, second = sorted(executor.futures)
    assert len(executor.futures) == 2       # two threads, five pools due
    executor.futures[first].set_result(status.PassResult(first, True))
    assert wake.is_set()                    # a full engine frees a thread
    wake.clear()
    # The loop has not claimed again yet (it was busy); the next thread
    # that frees must wake it too, though the engine is no longer full:
    # three due pools still wait for a thread.
    executor.futures[second].set_result(status.PassResult(second, True))
    assert wake.is_set()


def test_a_thread_that_frees_with_nothing_due_does_not_wake_the_loop(
        mysql_url):
    conf = es.make_conf(threads=4, wait_threads=1, poll_interval=30.0)
    es.want(1, "pool-1", ["h-1"])
    wake = threading.Event()
    sched = bare_scheduler(conf, wake)
    executor = _HeldExecutor()
    sched._claim(executor, conf.reconciler.threads)
    assert list(executor.futures) == [1]
    executor.futures[1].set_result(status.PassResult(1, True))
    assert not wake.is_set()


def test_a_pool_due_now_does_not_make_the_loop_miss_a_later_due_time(
        mysql_url):
    conf = es.make_conf(threads=2, wait_threads=1, poll_interval=30.0)
    es.want(1, "due-now", ["h-1"])
    es.want(2, "due-soon", ["h-2"])
    db_api.mark_due(2, datetime.datetime.utcnow()
                    + datetime.timedelta(seconds=0.5))
    sched = bare_scheduler(conf)
    # Pool 1 is due now and unclaimed (say its pass just released it and
    # its thread is not back yet): the loop sleeps until pool 2 is due,
    # not for the whole poll_interval.
    assert 0.0 < sched._idle_time() <= 0.5


def test_a_wake_up_keeps_the_hint_of_a_released_pool(mysql_url):
    conf = es.make_conf(threads=2, wait_threads=1, poll_interval=30.0)
    sched = bare_scheduler(conf)
    sched._hint_due(status.PassResult(1, False, pending="wait", due_in=0.3))
    sched.wake()
    stop = threading.Event()
    started = time.monotonic()
    sched._idle(stop)                # the wake-up: at once
    sched._idle(stop)                # the hint: 0.3 s, not poll_interval
    assert time.monotonic() - started < 5.0


def test_a_pool_due_between_the_claim_and_the_sleep_is_claimed_at_once(
        mysql_url):
    # NOTE(between) in engine/scheduler.py: the loop used to sleep until the
    # first pool due after *now*, so a pool that fell due after the claim
    # listed the due pools waited for the next poll.
    conf = es.make_conf(threads=2, wait_threads=1, poll_interval=30.0)
    es.want(1, "pool-1", ["h-1"])
    db_api.mark_due(1, datetime.datetime.utcnow()
                    + datetime.timedelta(seconds=0.3))
    sched = bare_scheduler(conf)
    executor = _HeldExecutor()
    sched._claim(executor, conf.reconciler.threads)
    assert executor.futures == {}           # not due yet
    time.sleep(0.4)                         # due now, before the loop sleeps
    assert sched._idle_time() == 0.0


def test_a_pool_due_at_the_claim_but_in_flight_does_not_spin_the_loop(
        mysql_url):
    # NOTE(spin): a pool the claim saw due but left alone (its pass had
    # released it, its thread was not back) wakes the loop when its thread
    # is; until then the loop sleeps.
    conf = es.make_conf(threads=2, wait_threads=1, poll_interval=30.0)
    es.want(1, "pool-1", ["h-1"])
    sched = bare_scheduler(conf)
    executor = _HeldExecutor()
    sched._claim(executor, conf.reconciler.threads)
    assert list(executor.futures) == [1]
    generation = db_api.get_pool(1)["generation"]
    assert db_api.release_lease(1, "me", generation,
                                due_at=datetime.datetime.utcnow())
    sched._claim(executor, conf.reconciler.threads)     # 1 is in flight
    assert sched._idle_time() > 1.0
