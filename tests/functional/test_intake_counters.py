"""The intake's counters and made-up message ids, on MariaDB.

The endpoint and dispatcher are driven the way the listener drives them
(``IntakeDispatcher.dispatch`` with incoming messages, the batch ``info``
entry point behind it), against a real database.
"""

from poolmgr.db import api as db_api
from poolmgr import intake

STAMP = "2026-12-01 06:57:11.522273"


class Incoming:
    """What the rabbit driver hands a dispatcher: decoded body, context."""

    def __init__(self, message, ctxt=None):
        self.message = message
        self.ctxt = ctxt or {}


def _aggregate_message(message_id, host="cmp1", aggregate_id=1):
    return {"message_id": message_id, "priority": "INFO",
            "publisher_id": "aggregate.%d" % aggregate_id,
            "event_type": "aggregate.addhost.end", "timestamp": STAMP,
            "payload": {"aggregate_id": str(aggregate_id),
                        "host_name": host}}


def _instance_message(n):
    return {"message_id": "inst-%d" % n, "priority": "INFO",
            "publisher_id": "nova-compute:cmp1",
            "event_type": "instance.update", "timestamp": STAMP,
            "payload": {"nova_object.name": "InstanceUpdatePayload",
                        "nova_object.data": {"uuid": "u-%d" % n}}}


def _no_id(host):
    # A malformed legacy addhost (no host_name) without a message_id.
    message = _aggregate_message(None, host=host)
    del message["message_id"]
    message["payload"] = {"aggregate_id": "1", "host": host}
    return message


def _dispatch(endpoint, bodies):
    dispatcher = intake.IntakeDispatcher(endpoint)
    return dispatcher.dispatch([Incoming(dict(b)) for b in bodies])


def test_two_idless_messages_of_one_instant_are_two_rows(mysql_url):
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    assert _dispatch(endpoint, [_no_id("cmp1"), _no_id("cmp2")]) == set()
    rows = db_api.list_notifications(outcome=db_api.REJECTED)
    assert len(rows) == 2
    assert len({r["message_id"] for r in rows}) == 2
    assert all(r["message_id"].startswith("unknown-") for r in rows)


def test_redelivery_of_an_idless_message_is_a_duplicate(mysql_url):
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    _dispatch(endpoint, [_no_id("cmp1")])
    _dispatch(endpoint, [_no_id("cmp1")])
    assert len(db_api.list_notifications()) == 1
    assert db_api.duplicate_counts() == {"aggregate.addhost.end": 1}


def test_non_aggregate_messages_are_counted_never_stored(mysql_url):
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    bodies = [_instance_message(n) for n in range(7)]
    bodies.insert(3, _aggregate_message("agg-1"))
    assert _dispatch(endpoint, bodies) == set()
    endpoint.flush_counters()
    assert [r["message_id"] for r in db_api.list_notifications()] == ["agg-1"]
    assert db_api.skipped_count() == 7


def test_skipped_count_is_written_within_the_counter_interval(mysql_url):
    from tests.functional import daemon_support as support
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None,
                                               counter_interval=0.2)
    _dispatch(endpoint, [_instance_message(n) for n in range(3)])
    support.wait_for(lambda: db_api.skipped_count() == 3, timeout=10,
                     what="the skipped counter")


def test_stored_notifications_are_counted_by_type_and_outcome(mysql_url):
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    _dispatch(endpoint, [_aggregate_message("a-1", "cmp1"),
                         _aggregate_message("a-2", "cmp2"),
                         _aggregate_message("a-1", "cmp1"),
                         dict(_aggregate_message("bad"),
                              event_type="aggregate.bogus.end")])
    assert db_api.notification_counts() == {
        ("aggregate.addhost.end", db_api.APPLIED): 2,
        ("other", db_api.REJECTED): 1}
    assert db_api.duplicate_counts() == {"aggregate.addhost.end": 1}


def test_rejected_junk_event_types_share_one_counter(mysql_url):
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    _dispatch(endpoint, [dict(_aggregate_message("j-%d" % n),
                              event_type="aggregate.junk%d.end" % n)
                         for n in range(5)])
    assert db_api.notification_counts() == {
        ("other", db_api.REJECTED): 5}


def _flag(message_id, aggregate_id, value="true"):
    return {"message_id": message_id, "priority": "INFO",
            "publisher_id": "aggregate.%d" % aggregate_id,
            "event_type": "aggregate.updatemetadata.end",
            "timestamp": "2026-12-01 06:57:%02d.000000" % int(
                message_id.rsplit("-", 1)[1]),
            "payload": {"aggregate_id": aggregate_id,
                        "meta_data": {"hypervisor_pool": value}}}


def test_one_batch_creates_the_pools_of_newly_flagged_aggregates(mysql_url):
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    _dispatch(endpoint, [_flag("f-1", 1), _flag("f-2", 2),
                         _aggregate_message("a-3", aggregate_id=3)])
    pools = {p["aggregate_id"]: p for p in db_api.list_pools()}
    assert sorted(pools) == [1, 2]
    assert {p["state"] for p in pools.values()} == {db_api.POOL_CREATED}
    assert all(p["due_at"] is not None for p in pools.values())


def test_a_dismissed_pool_flagged_again_is_created_and_due(mysql_url):
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    _dispatch(endpoint, [_flag("f-1", 1)])
    db_api.update_pool(1, state=db_api.POOL_DISMISSED, due_at=None)
    _dispatch(endpoint, [_flag("f-2", 1, "false"), _flag("f-3", 1)])
    pool = db_api.get_pool(1)
    assert pool["state"] == db_api.POOL_CREATED
    assert pool["due_at"] is not None


def test_a_row_another_intake_stored_meanwhile_is_a_duplicate(
        mysql_url, monkeypatch):
    # NOTE(race): the batch's SQL text (db.sqltext NOTE(sql-text)) still
    # goes through oslo.db's filters: the unique message_id refuses the
    # row with DBDuplicateEntry, and the retry sees it.
    from poolmgr.db import eventlog
    endpoint = intake.AggregateEndpoint(sleep=lambda s: None)
    assert _dispatch(endpoint, [_aggregate_message("m-race")]) == set()
    seen, blind = eventlog._SQLText.seen, [True]

    def seen_once_blind(self, ids):
        if blind.pop() if blind else False:
            return set()
        return seen(self, ids)
    monkeypatch.setattr(eventlog._SQLText, "seen", seen_once_blind)
    message = _aggregate_message("m-race", host="cmp2")
    assert _dispatch(endpoint, [message, _aggregate_message("m-other")]) \
        == set()
    assert not blind
    ids = [r["message_id"] for r in db_api.list_notifications()]
    assert sorted(ids) == ["m-other", "m-race"]
    assert db_api.duplicate_counts() == {"aggregate.addhost.end": 1}
    assert db_api.get_aggregate(1)["hosts"] == ["cmp1"]
