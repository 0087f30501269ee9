"""Leases and the journal, on MariaDB (the claims are about MySQL).

Each test runs on MariaDB and on SQLite; the MariaDB run is the one that
counts (``POOLMGR_REQUIRE_SERVICES=1`` makes it fail rather than skip).
"""

import pytest

from poolmgr.db import api as db_api
from tests.functional import engine_support as es


@pytest.fixture(params=["mysql_url", "sqlite_url"])
def db(request):
    request.getfixturevalue(request.param)
    db_api.put_aggregate(7, "pool-a", ["c1"], {"hypervisor_pool": "true"})
    return request.param


def test_lease_is_exclusive(db):
    assert db_api.acquire_lease(7, "a", 30) == 1
    assert db_api.acquire_lease(7, "b", 30) is None


def test_released_lease_goes_to_the_next_holder_at_a_new_generation(db):
    gen = db_api.acquire_lease(7, "a", 30)
    assert db_api.release_lease(7, "a", gen)
    assert db_api.acquire_lease(7, "b", 30) == gen + 1
    assert not db_api.check_lease(7, "a", gen)


def test_an_acquire_at_the_generation_read_gets_the_next_one(db):
    [(_, _, seen)] = db_api.list_due_pools(waiting=True)
    gen = db_api.acquire_lease(7, "a", 30, expected=seen)
    assert gen == seen + 1
    assert db_api.check_lease(7, "a", gen)
    assert db_api.release_lease(7, "a", gen)


def test_an_acquire_at_a_stale_generation_gets_nothing(db):
    [(_, _, seen)] = db_api.list_due_pools(waiting=True)
    other = db_api.acquire_lease(7, "b", 30)
    assert db_api.release_lease(7, "b", other)
    # Free again, but another engine held it since it was read.
    assert db_api.acquire_lease(7, "a", 30, expected=seen) is None
    assert db_api.acquire_lease(7, "a", 30, expected=other) == other + 1


def test_expired_lease_can_be_taken_over(db):
    gen = db_api.acquire_lease(7, "a", -1)
    assert db_api.acquire_lease(7, "b", 30) == gen + 1


def test_holder_that_lost_its_lease_cannot_renew_it(db):
    gen = db_api.acquire_lease(7, "a", -1)
    db_api.acquire_lease(7, "b", 30)
    assert not db_api.renew_lease(7, "a", gen, 30)


def test_a_release_writes_its_fields_only_while_the_lease_is_held(db):
    wait = {"kind": "wait_member", "host": "c1"}
    gen = db_api.acquire_lease(7, "a", -1)
    gen_b = db_api.acquire_lease(7, "b", 30)
    assert not db_api.release_lease(7, "a", gen, fields={
        "waiting": wait, "reasons": ["stale"]})
    pool = db_api.get_pool(7)
    assert (pool["waiting"], pool["lease_owner"]) == (None, "b")
    assert pool["reasons"] != ["stale"]
    assert db_api.release_lease(7, "b", gen_b, fields={
        "waiting": wait, "reasons": ["waiting for c1"]})
    pool = db_api.get_pool(7)
    assert (pool["waiting"], pool["reasons"], pool["lease_owner"]) == (
        wait, ["waiting for c1"], None)


def test_a_renewal_writes_its_reasons_only_while_the_lease_is_held(db):
    gen = db_api.acquire_lease(7, "a", -1)
    gen_b = db_api.acquire_lease(7, "b", 30)
    assert not db_api.renew_lease(7, "a", gen, 30,
                                  fields={"reasons": ["stale"]})
    assert db_api.get_pool(7)["reasons"] != ["stale"]
    assert db_api.renew_lease(7, "b", gen_b, 30,
                              fields={"reasons": ["in progress: x"]})
    assert db_api.get_pool(7)["reasons"] == ["in progress: x"]


def test_holder_that_lost_its_lease_cannot_release_the_new_one(db):
    gen = db_api.acquire_lease(7, "a", -1)
    gen_b = db_api.acquire_lease(7, "b", 30)
    assert not db_api.release_lease(7, "a", gen)
    assert db_api.check_lease(7, "b", gen_b)


def _started_by(owner, generation):
    return db_api.journal_start(7, "join", host="c1", step="pool.join",
                                owner=owner, generation=generation)


def test_journal_finish_by_the_lease_holder_succeeds(db):
    gen = db_api.acquire_lease(7, "a", 30)
    op_id = _started_by("a", gen)
    assert db_api.journal_finish(op_id, db_api.OP_SUCCEEDED, owner="a",
                                 generation=gen)
    assert db_api.list_operations(7)[0]["status"] == db_api.OP_SUCCEEDED


def test_lost_lease_cannot_turn_an_abandoned_row_into_succeeded(db):
    gen = db_api.acquire_lease(7, "a", -1)
    op_id = _started_by("a", gen)
    db_api.acquire_lease(7, "b", 30)
    # The next holder closes the stale row, as the engine does on claiming.
    assert db_api.journal_finish(op_id, db_api.OP_ABANDONED)
    assert not db_api.journal_finish(op_id, db_api.OP_SUCCEEDED, owner="a",
                                     generation=gen)
    assert db_api.list_operations(7)[0]["status"] == db_api.OP_ABANDONED


def test_lost_lease_cannot_finish_a_row_still_started(db):
    gen = db_api.acquire_lease(7, "a", -1)
    op_id = _started_by("a", gen)
    db_api.acquire_lease(7, "b", 30)
    assert not db_api.journal_finish(op_id, db_api.OP_SUCCEEDED, owner="a",
                                     generation=gen)
    row = db_api.list_operations(7)[0]
    assert (row["status"], row["finished_at"]) == (db_api.OP_STARTED, None)


def test_a_step_is_counted_once_started_and_once_finished_in_one_statement(
        db):
    gen = db_api.acquire_lease(7, "a", 30)
    with es.statements() as seen:
        op_id = _started_by("a", gen)
    # NOTE(counted-at-finish): the INSERT of the row, no counter yet; in
    # flight, the step is counted from the journal.
    # (SQLite's BEGIN, which oslo.db sends itself, is not a statement of
    # the journal's.)
    assert [sql.split()[:3] for sql, _ in seen if sql != "BEGIN"] == [
        ["INSERT", "INTO", "operations"]], seen
    assert db_api.operation_counts() == {("join", "started", None): 1}
    with es.statements() as seen:
        assert db_api.journal_finish(op_id, db_api.OP_FAILED, "HOST_OFFLINE",
                                     owner="a", generation=gen, kind="join")
    assert [sql.split()[:3] for sql, _ in seen if sql != "BEGIN"] == [
        ["UPDATE", "operations", "SET"], ["INSERT", "INTO", "counters"]], \
        seen
    assert db_api.operation_counts() == {
        ("join", "started", None): 1,
        ("join", "failed", "HOST_OFFLINE"): 1}
    # A row another holder closes (abandoned) is counted then, once.
    stale = _started_by("a", gen)
    assert db_api.operation_counts()[("join", "started", None)] == 2
    assert db_api.journal_finish(stale, db_api.OP_ABANDONED)
    assert db_api.operation_counts() == {
        ("join", "started", None): 2,
        ("join", "failed", "HOST_OFFLINE"): 1,
        ("join", "abandoned", None): 1}


def test_finished_row_is_not_finished_again(db):
    gen = db_api.acquire_lease(7, "a", 30)
    op_id = _started_by("a", gen)
    assert db_api.journal_finish(op_id, db_api.OP_FAILED, "HOST_OFFLINE",
                                 owner="a", generation=gen)
    assert not db_api.journal_finish(op_id, db_api.OP_ABANDONED)
    assert db_api.list_operations(7)[0]["status"] == db_api.OP_FAILED


def test_a_notification_committed_during_a_pass_keeps_the_pool_due(
        db, monkeypatch):
    """The lost wake-up CI met: an intake batch began before a pass did
    (its clock read earlier) and committed while the pass ran; the pass's
    release must not replace the batch's due time with the resync's."""
    import datetime

    from poolmgr.db import eventlog
    from poolmgr.engine import context
    from poolmgr import events

    started = context.now()             # the scheduler, before the lease
    gen = db_api.acquire_lease(7, "engine", 30)
    # The batch's own clock read predates the pass's start.
    monkeypatch.setattr(eventlog, "_now", lambda: started -
                        datetime.timedelta(seconds=1))
    db_api.record_event(events.AggregateEvent(
        message_id="late-add", event_type="aggregate.addhost.end",
        publisher_id="aggregate.7", timestamp=started, kind=events.ADD_HOST,
        phase=events.END, versioned=False, aggregate_id=7, host="c2"))
    resync = context.now() + datetime.timedelta(seconds=600)
    assert db_api.release_lease(7, "engine", gen, due_at=resync,
                                marked_since=started)
    due = db_api.get_pool(7)["due_at"]
    assert due < resync - datetime.timedelta(seconds=590), due
    assert 7 in db_api.list_due_pools(now=context.now()
                                      + datetime.timedelta(seconds=1))
