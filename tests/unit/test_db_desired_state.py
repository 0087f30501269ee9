"""Folding notifications into desired state: dedupe, ordering, pools."""

import datetime
import itertools

from poolmgr.db import api as db_api
from poolmgr import events

T0 = datetime.datetime(2026, 11, 1, 10, 0, 0)


def _event(n, kind, aggregate_id=7, versioned=False, phase=events.END,
           **fields):
    return events.AggregateEvent(
        message_id="msg-%d" % n, event_type="aggregate.%s.%s" % (kind, phase),
        publisher_id="aggregate.%s" % aggregate_id,
        timestamp=T0 + datetime.timedelta(seconds=n), kind=kind, phase=phase,
        versioned=versioned, aggregate_id=aggregate_id, **fields)


def _legacy_stream():
    return [
        _event(1, events.CREATE, name="pool-a", metadata_delta={}),
        _event(2, events.UPDATE_METADATA,
               metadata_delta={"hypervisor_pool": "true"}),
        _event(3, events.ADD_HOST, host="c1"),
        _event(4, events.ADD_HOST, host="c2"),
        _event(5, events.ADD_HOST, host="c3"),
        _event(6, events.REMOVE_HOST, host="c2"),
        _event(7, events.UPDATE_METADATA, metadata_delta={"az": "z1"}),
        _event(8, events.UPDATE_METADATA, metadata_delta={"az": None}),
    ]


def _desired():
    agg = db_api.get_aggregate(7)
    return agg["name"], agg["hosts"], agg["metadata"], agg["deleted"]


def test_in_order_legacy_stream_builds_the_aggregate(sqlite_url):
    for event in _legacy_stream():
        assert db_api.record_event(event) == db_api.APPLIED
    assert _desired() == ("pool-a", ["c1", "c3"],
                          {"hypervisor_pool": "true"}, False)
    assert db_api.get_pool(7)["state"] == db_api.POOL_CREATED


def test_duplicate_message_is_reported_and_changes_nothing(sqlite_url):
    stream = _legacy_stream()
    for event in stream:
        db_api.record_event(event)
    before = _desired()
    assert db_api.record_event(stream[3]) == db_api.DUPLICATE
    assert _desired() == before


def test_every_shuffle_of_a_stream_converges_to_in_order_state(tmp_path):
    from poolmgr.db import migration
    stream = _legacy_stream()[:6]
    results = set()
    for i, order in enumerate(itertools.permutations(stream)):
        if i % 37:  # a spread-out sample of the 720 orders keeps this fast
            continue
        db_api.configure_url("sqlite:///%s" % (tmp_path / ("p%d.db" % i)))
        migration.upgrade()
        for event in order + order[:2]:
            db_api.record_event(event)
        results.add((_desired()[0], tuple(_desired()[1])))
    db_api.dispose()
    assert results == {("pool-a", ("c1", "c3"))}


def test_older_versioned_snapshot_does_not_roll_back(sqlite_url):
    newer = _event(5, events.ADD_HOST, versioned=True, name="p",
                   hosts=("c1", "c2"), metadata={"hypervisor_pool": "x"})
    older = _event(4, events.ADD_HOST, versioned=True, name="p",
                   hosts=("c1",), metadata={"hypervisor_pool": "x"})
    assert db_api.record_event(newer) == db_api.APPLIED
    assert db_api.record_event(older) == db_api.STALE
    assert _desired()[1] == ["c1", "c2"]


def test_start_events_are_recorded_but_change_nothing(sqlite_url):
    start = _event(1, events.ADD_HOST, phase=events.START, host="c1")
    assert db_api.record_event(start) == db_api.RECORDED
    assert db_api.get_aggregate(7) is None


def test_delete_is_final_whatever_the_order(sqlite_url):
    db_api.record_event(_event(9, events.DELETE))
    db_api.record_event(_event(3, events.ADD_HOST, host="c1"))
    assert _desired()[3] is True


def test_flag_removed_keeps_pool_row_for_dismissal(sqlite_url):
    db_api.record_event(_event(1, events.UPDATE_METADATA,
                               metadata_delta={"hypervisor_pool": ""}))
    assert db_api.get_pool(7) is not None
    db_api.update_pool(7, due_at=None)
    db_api.record_event(_event(2, events.UPDATE_METADATA,
                               metadata_delta={"hypervisor_pool": None}))
    assert db_api.get_pool(7)["due_at"] is not None


def test_aggregate_without_flag_gets_no_pool(sqlite_url):
    db_api.record_event(_event(1, events.ADD_HOST, host="c1"))
    assert db_api.get_pool(7) is None


def test_rejected_notification_is_logged_once(sqlite_url):
    assert db_api.record_rejected("bad-1", "aggregate.x", "p", "boom") == \
        db_api.REJECTED
    assert db_api.record_rejected("bad-1", "aggregate.x", "p", "boom") == \
        db_api.DUPLICATE
    assert db_api.notification_counts() == {("aggregate.x", "rejected"): 1}


def test_lease_is_exclusive_and_fenced(sqlite_url):
    db_api.record_event(_event(1, events.UPDATE_METADATA,
                               metadata_delta={"hypervisor_pool": ""}))
    gen = db_api.acquire_lease(7, "a", 30)
    assert gen == 1
    assert db_api.acquire_lease(7, "b", 30) is None
    assert db_api.check_lease(7, "a", gen)
    assert db_api.release_lease(7, "a", gen)
    gen_b = db_api.acquire_lease(7, "b", 30)
    assert gen_b == 2
    assert not db_api.check_lease(7, "a", gen)


def test_expired_lease_can_be_taken_over(sqlite_url):
    db_api.record_event(_event(1, events.UPDATE_METADATA,
                               metadata_delta={"hypervisor_pool": ""}))
    gen = db_api.acquire_lease(7, "a", -1)
    assert db_api.acquire_lease(7, "b", 30) == gen + 1
    assert not db_api.renew_lease(7, "a", gen, 30)
