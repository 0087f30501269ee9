"""The Nova API sync folded into the mirror, and the reflection's diff."""

import datetime

from poolmgr.db import api as db_api
from poolmgr import events
from poolmgr.nova import client as nova
from poolmgr.nova import reflect

T0 = datetime.datetime(2026, 11, 1, 10, 0, 0)
FLAG = {events.POOL_FLAG: "true"}


def _at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def _listing(seconds, *aggregates):
    return nova.Listing(started_at=_at(seconds), aggregates=tuple(
        {"id": a[0], "uuid": None, "name": a[1], "hosts": list(a[2]),
         "metadata": dict(a[3])} for a in aggregates))


def _legacy(n, seconds, kind, aggregate_id=7, **fields):
    return events.AggregateEvent(
        message_id="m-%d" % n, event_type="aggregate.%s.end" % kind,
        publisher_id="aggregate.%d" % aggregate_id, timestamp=_at(seconds),
        kind=kind, phase=events.END, versioned=False,
        aggregate_id=aggregate_id, **fields)


def _versioned(n, seconds, hosts, metadata, aggregate_id=7, name="p"):
    return events.AggregateEvent(
        message_id="v-%d" % n,
        event_type="aggregate.update_metadata.end",
        publisher_id="nova-api:x", timestamp=_at(seconds),
        kind=events.UPDATE_METADATA, phase=events.END, versioned=True,
        aggregate_id=aggregate_id, name=name, hosts=tuple(hosts),
        metadata=dict(metadata))


def test_listing_adopts_a_flagged_aggregate_in_novas_host_order(sqlite_url):
    changes = db_api.apply_listing(_listing(10, (7, "p", ["c2", "c1"],
                                                 FLAG)))
    assert [(c["aggregate_id"], c["action"]) for c in changes] == [
        (7, "adopted")]
    assert db_api.get_aggregate(7)["hosts"] == ["c2", "c1"]
    assert db_api.get_pool(7)["state"] == db_api.POOL_CREATED


def test_listing_order_replaces_the_order_notifications_gave(sqlite_url):
    db_api.record_event(_legacy(1, 1, events.UPDATE_METADATA,
                                metadata_delta=FLAG))
    db_api.record_event(_legacy(2, 2, events.ADD_HOST, host="c1"))
    db_api.record_event(_legacy(3, 3, events.ADD_HOST, host="c2"))
    db_api.apply_listing(_listing(10, (7, "p", ["c2", "c1"], FLAG)))
    assert db_api.get_aggregate(7)["hosts"] == ["c2", "c1"]


def test_an_older_notification_delivered_late_cannot_undo_the_listing(
        sqlite_url):
    db_api.apply_listing(_listing(10, (7, "p", ["c1"], FLAG)))
    db_api.record_event(_legacy(1, 5, events.ADD_HOST, host="c2"))
    db_api.record_event(_legacy(2, 6, events.UPDATE_METADATA,
                                metadata_delta={"note": "old"}))
    agg = db_api.get_aggregate(7)
    assert (agg["hosts"], agg["metadata"]) == (["c1"], FLAG)


def test_a_newer_notification_survives_the_listing(sqlite_url):
    db_api.apply_listing(_listing(1, (7, "p", ["c1"], FLAG)))
    db_api.record_event(_legacy(1, 12, events.ADD_HOST, host="c2"))
    db_api.record_event(_legacy(2, 13, events.UPDATE_METADATA,
                                metadata_delta={"note": "new"}))
    # Listed at 10, before those changes reached Nova's database.
    changes = db_api.apply_listing(_listing(10, (7, "p", ["c1"], FLAG)))
    agg = db_api.get_aggregate(7)
    assert agg["hosts"] == ["c1", "c2"]
    assert agg["metadata"] == dict(FLAG, note="new")
    assert changes == []


def test_listing_heals_a_lost_removal_and_marks_the_pool_due(sqlite_url):
    db_api.apply_listing(_listing(1, (7, "p", ["c1", "c2"], FLAG)))
    db_api.update_pool(7, due_at=None)
    changes = db_api.apply_listing(_listing(10, (7, "p", ["c1"], FLAG)))
    assert [c.get("hosts_removed") for c in changes] == [["c2"]]
    assert db_api.get_aggregate(7)["hosts"] == ["c1"]
    assert db_api.get_pool(7)["due_at"] is not None


def test_unchanged_listing_leaves_the_pool_not_due(sqlite_url):
    db_api.apply_listing(_listing(1, (7, "p", ["c1"], FLAG)))
    db_api.update_pool(7, due_at=None)
    assert db_api.apply_listing(_listing(10, (7, "p", ["c1"], FLAG))) == []
    assert db_api.get_pool(7)["due_at"] is None


def test_aggregate_gone_from_the_listing_is_deleted(sqlite_url):
    db_api.apply_listing(_listing(1, (7, "p", ["c1"], FLAG)))
    changes = db_api.apply_listing(_listing(10))
    assert [(c["aggregate_id"], c["action"]) for c in changes] == [
        (7, "deleted")]
    assert db_api.get_aggregate(7)["deleted"] is True


def test_aggregate_heard_of_after_the_listing_started_is_kept(sqlite_url):
    db_api.record_event(_legacy(1, 12, events.UPDATE_METADATA,
                                metadata_delta=FLAG))
    assert db_api.apply_listing(_listing(10)) == []
    assert db_api.get_aggregate(7)["deleted"] is False


def test_dry_run_reports_and_writes_nothing(sqlite_url):
    changes = db_api.apply_listing(_listing(10, (7, "p", ["c1"], FLAG)),
                                   dry_run=True)
    assert [c["action"] for c in changes] == ["adopted"]
    assert db_api.get_aggregate(7) is None


def test_own_metadata_keys_do_not_mark_the_pool_due(sqlite_url):
    db_api.apply_listing(_listing(1, (7, "p", ["c1"], FLAG)))
    db_api.update_pool(7, due_at=None)
    db_api.record_event(_versioned(1, 5, ["c1"], dict(
        FLAG, operational_state="active", master_compute="c1",
        c1="0b1f7a43-2a0b-4b46-9cb5-5d4b7d4a0c11")))
    assert db_api.get_pool(7)["due_at"] is None
    assert db_api.get_aggregate(7)["metadata"]["master_compute"] == "c1"


def test_an_operator_metadata_key_marks_the_pool_due(sqlite_url):
    db_api.apply_listing(_listing(1, (7, "p", ["c1"], FLAG)))
    db_api.update_pool(7, due_at=None)
    db_api.record_event(_versioned(1, 5, ["c1"], dict(FLAG, note="x")))
    assert db_api.get_pool(7)["due_at"] is not None


def _pool(state, master=None, reflected=None):
    return {"aggregate_id": 7, "state": state, "master": master,
            "reflected": reflected}


def _member(host, state, uuid):
    return {"host": host, "state": state, "xenserver_uuid": uuid}


def test_wanted_keys_of_an_active_pool():
    members = [_member("c1", db_api.MEMBER_ACTIVE, "u1"),
               _member("c2", db_api.MEMBER_JOINING, "u2")]
    assert reflect.wanted(_pool("changing", "c1"), members) == {
        "operational_state": "changing", "master_compute": "c1",
        "c1": "u1"}


def test_a_drained_member_keeps_its_key_it_is_still_a_member():
    members = [_member("c1", db_api.MEMBER_ACTIVE, "u1"),
               _member("c2", db_api.MEMBER_DRAINED, "u2"),
               _member("c3", db_api.MEMBER_DRAINING, "u3")]
    assert reflect.wanted(_pool("active", "c1"), members) == {
        "operational_state": "active", "master_compute": "c1",
        "c1": "u1", "c2": "u2", "c3": "u3"}


def test_dismissed_pool_keeps_only_its_state():
    members = [_member("c1", db_api.MEMBER_ACTIVE, "u1")]
    assert reflect.wanted(_pool("dismissed", "c1"), members) == {
        "operational_state": "dismissed"}


def test_diff_removes_keys_of_hosts_that_left_and_sends_only_changes():
    previous = {"operational_state": "active", "master_compute": "c1",
                "c1": "u1", "c2": "u2"}
    keys = {"operational_state": "active", "master_compute": "c1",
            "c1": "u1", "c3": "u3"}
    assert reflect.diff(previous, keys) == {"c2": None, "c3": "u3"}
    assert reflect.diff(keys, keys) == {}


def test_a_pool_leaving_active_says_so_before_its_keys_change():
    # NOTE(order): Nova deletes a call's keys before it adds the others;
    # in one call, a reader in between would see "active" without c2
    # while c2 is being ejected.
    previous = {"operational_state": "active", "master_compute": "c1",
                "c1": "u1", "c2": "u2"}
    changes = {"operational_state": "changing", "c2": None}
    assert reflect.calls(previous, changes) == [
        {"operational_state": "changing"}, {"c2": None}]
    # Nothing else changes, or the pool becomes active: one call.
    assert reflect.calls(previous, {"operational_state": "changing"}) == [
        {"operational_state": "changing"}]
    waiting = dict(previous, operational_state="changing")
    assert reflect.calls(waiting, {"operational_state": "active",
                                   "c2": None}) == [
        {"operational_state": "active", "c2": None}]
    assert reflect.calls(previous, {"c3": "u3"}) == [{"c3": "u3"}]


def test_first_reflection_starts_from_owned_keys_and_spares_the_rest():
    agg = {"metadata": {events.POOL_FLAG: "true", "note": "x",
                        "operational_state": "created", "old": "u9"},
           "hosts": ["c1"], "host_stamps": {"c1": {}, "old": {}}}
    assert reflect.previous_keys(_pool("created"), agg) == {
        "operational_state": "created", "old": "u9"}


def test_keys_edited_in_nova_are_written_again_after_a_listing(sqlite_url):
    written = {"operational_state": "active", "master_compute": "c1",
               "c1": "u1"}
    db_api.apply_listing(_listing(1, (7, "p", ["c1"], dict(FLAG,
                                                           **written))))
    db_api.set_reflected(7, written)
    db_api.update_pool(7, state="active", master="c1")
    db_api.upsert_member(7, "c1", state=db_api.MEMBER_ACTIVE,
                         xenserver_uuid="u1")
    assert reflect.pending() == []
    # Someone removed master_compute by hand.
    listing = _listing(10, (7, "p", ["c1"], dict(
        FLAG, operational_state="active", c1="u1")))
    db_api.apply_listing(listing)
    assert reflect.heal_from_listing(listing) == [7]
    assert [p[3] for p in reflect.pending()] == [{"master_compute": "c1"}]
