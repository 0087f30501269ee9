"""The daemon consumes Nova's aggregate notifications over real RabbitMQ.

``poolmgr --config-file F`` runs as a subprocess against real RabbitMQ and
MariaDB; notifications are published through oslo.messaging's Notifier with
the messagingv2 driver, exactly as Nova does (poolmgr.simulator.fakenova).
"""

import json

import kombu
import pytest

from poolmgr.db import api as db_api
from poolmgr.simulator import fakenova
from tests.functional import daemon_support as support


def _build_pool(nova):
    agg = nova.create_aggregate("pool-a", availability_zone="az1")
    nova.set_metadata(agg, {"hypervisor_pool": "true", "scratch": "x"})
    for host in ("xs1", "xs2", "xs3"):
        nova.add_host(agg, host)
    nova.remove_host(agg, "xs2")
    nova.set_metadata(agg, {"scratch": None})
    nova.rename(agg, "pool-b")
    return agg


EXPECTED = ("pool-b", ["xs1", "xs3"],
            {"availability_zone": "az1", "hypervisor_pool": "true"}, False)


@pytest.mark.parametrize("formats", [
    (fakenova.VERSIONED,), (fakenova.LEGACY,),
    (fakenova.VERSIONED, fakenova.LEGACY)], ids="+".join)
def test_pool_desired_state_forms_from_notifications(bus, daemon_factory,
                                                     formats):
    daemon_factory().start()
    nova = bus.nova(formats=formats)
    agg = _build_pool(nova)
    support.recorded(len(nova.sent))
    expected = EXPECTED
    if formats == (fakenova.LEGACY,):
        # Legacy updateprop does not carry the new name (nova.md 11.1).
        expected = ("pool-a",) + EXPECTED[1:]
    assert support.desired(agg) == expected
    pool = db_api.get_pool(agg)
    assert pool is not None and pool["state"] == db_api.POOL_CREATED
    counts = support.outcomes()
    assert counts.get(db_api.REJECTED, 0) == 0
    assert counts[db_api.RECORDED] == len(nova.sent) // 2


def _capture(bus, publish):
    """Run ``publish`` and return the raw AMQP messages it put on the bus."""
    conn = kombu.Connection(support.amqp_url(bus.rabbit_url))
    exchange = kombu.Exchange(bus.exchange, type="topic", durable=True)
    stage = kombu.Queue(bus.pool + "_stage", exchange=exchange,
                        routing_key="#", auto_delete=False)
    try:
        stage(conn.default_channel).declare()
        publish()
        raw = []
        while True:
            message = stage(conn.default_channel).get(no_ack=True)
            if message is None:
                break
            raw.append((message.delivery_info["routing_key"], message.body))
        return raw
    finally:
        stage(conn.default_channel).delete()
        conn.release()


def test_duplicates_and_shuffled_order_converge_to_the_same_state(
        bus, daemon_factory):
    nova = bus.nova()
    raw = _capture(bus, lambda: _build_pool(nova))
    assert len(raw) == len(nova.sent)
    daemon_factory().start()
    stream = support.shuffled_with_duplicates(raw, seed=20261101)
    for routing_key, body in stream:
        bus.publish_raw(body, topic=routing_key.rsplit(".", 1)[0])
    support.recorded(len(raw))
    support.wait_for(lambda: bus.queue_depth() == 0, what="queue to drain")
    assert support.desired(1) == EXPECTED
    # Every message is stored once; the copies are acked as duplicates.
    rows = db_api.list_notifications(limit=1000)
    assert len(rows) == len(raw)


def _envelope(message):
    return {"oslo.version": "2.0", "oslo.message": json.dumps(message)}


def _bad_bodies(bus):
    """(body, counted) pairs: malformed input of every layer."""
    def note(n, **fields):
        message = {"message_id": "bad-%d" % n, "publisher_id": "nova-api:h",
                   "event_type": "aggregate.add_host.end", "priority": "INFO",
                   "timestamp": "2026-11-01 10:00:00.000001",
                   "payload": {"nova_object.name": "AggregatePayload"}}
        message.update(fields)
        return message

    return [
        # Undecodable before oslo.messaging hands it to anyone: dropped.
        (b"{not json", False),
        (json.dumps([1, 2, 3]), False),
        (json.dumps("a string"), False),
        (json.dumps({"oslo.version": "9.0", "oslo.message": "{}"}), False),
        (json.dumps({"oslo.version": "2.0", "oslo.message": "{nope"}),
         False),
        # Not ours: filtered out by event type.
        (_envelope(note(1, event_type="compute.instance.create.end")),
         False),
        # Ours and malformed: rejected and counted.
        (_envelope(note(2)), True),
        (_envelope(note(3, payload=[1])), True),
        (_envelope(note(4, event_type="aggregate.bogus.end")), True),
        (_envelope(note(5, priority=None)), True),
        (_envelope(note(6, priority=7)), True),
        (_envelope(note(7, timestamp="yesterday")), True),
        (_envelope(note(8, publisher_id="aggregate.1",
                        event_type="aggregate.addhost.end",
                        payload={"aggregate_id": "one",
                                 "host_name": "x"})), True),
        (note(9, publisher_id="aggregate.1",
              event_type="aggregate.removehost.end",
              payload={"aggregate_id": 1}), True),  # messaging 1.0, flat
    ]


def test_malformed_messages_are_counted_and_valid_ones_after_them_applied(
        bus, daemon_factory):
    daemon = daemon_factory().start()
    bad = _bad_bodies(bus)
    for body, _ in bad:
        bus.publish_raw(body)
    nova = bus.nova()
    agg = _build_pool(nova)
    counted = sum(1 for _, c in bad if c)
    support.recorded(len(nova.sent) + counted)
    support.wait_for(lambda: bus.queue_depth() == 0, what="queue to drain")
    assert support.desired(agg) == EXPECTED
    rejected = db_api.list_notifications(limit=100,
                                         outcome=db_api.REJECTED)
    assert sorted(r["message_id"] for r in rejected) == sorted(
        "bad-%d" % n for n in range(2, 10))
    assert all(r["reason"] for r in rejected)
    assert daemon.proc.poll() is None
    log = daemon.log_text()
    assert "Rejected notification bad-4" in log
    # Nothing was requeued: a poison message never loops.
    assert "requeueing" not in log


def test_database_outage_requeues_and_nothing_is_lost(
        bus, daemon_factory, mysql_server, mysql_empty_url):
    """The database is missing at first; messages wait in the queue."""
    from poolmgr.db import migration
    import sqlalchemy as sa

    name = mysql_empty_url.rsplit("/", 1)[1]
    with mysql_server.connect() as conn:
        conn.execute(sa.text("DROP DATABASE %s" % name))
    daemon = daemon_factory(requeue_delay=0.3)
    daemon.start()
    nova = bus.nova(formats=(fakenova.VERSIONED,))
    agg = nova.create_aggregate("later")
    nova.set_metadata(agg, {"hypervisor_pool": "1"})
    nova.add_host(agg, "xs9")
    support.wait_for(lambda: "requeueing" in daemon.log_text(),
                     what="a requeue")
    with mysql_server.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE %s CHARACTER SET utf8mb4"
                             % name))
    db_api.configure_url(mysql_empty_url)
    migration.upgrade()
    support.recorded(len(nova.sent))
    assert support.desired(agg)[1] == ["xs9"]
    assert support.outcomes().get(db_api.REJECTED, 0) == 0


def _instance_body(n, versioned):
    """An instance notification as Nova's notifier puts it on the wire."""
    instance = "00000000-0000-4000-8000-%012d" % n
    if versioned:
        event_type, publisher = "instance.update", "nova-compute:cmp1"
        payload = {"nova_object.name": "InstanceUpdatePayload",
                   "nova_object.namespace": "nova",
                   "nova_object.version": "2.0",
                   "nova_object.data": {"uuid": instance, "host": "cmp1",
                                        "state": "active",
                                        "task_state": None}}
    else:
        event_type, publisher = "compute.instance.update", "compute.cmp1"
        payload = {"instance_id": instance, "host": "cmp1",
                   "state": "active", "old_task_state": "spawning"}
    return _envelope({"message_id": "inst-%d" % n, "publisher_id": publisher,
                      "event_type": event_type, "priority": "INFO",
                      "payload": payload,
                      "timestamp": "2026-12-01 06:57:11.%06d" % n,
                      "_context_request_id": "req-%d" % n,
                      "_unique_id": "u%d" % n})


def test_mixed_stream_applies_every_aggregate_event_and_stores_nothing_else(
        bus, daemon_factory):
    daemon = daemon_factory(extra="[notifications]\nworkers = 2\n").start()
    # Two intake workers share the queue.
    support.wait_for(lambda: "Intake worker 1 listening" in daemon.log_text(),
                     what="the second intake worker")
    nova = bus.nova()
    instances = 0

    def traffic(count):
        nonlocal instances
        for _ in range(count):
            versioned = instances % 2 == 0
            bus.publish_raw(_instance_body(instances, versioned),
                            topic=(bus.versioned_topic if versioned
                                   else bus.legacy_topic))
            instances += 1

    traffic(40)
    agg = nova.create_aggregate("pool-a", availability_zone="az1")
    traffic(40)
    nova.set_metadata(agg, {"hypervisor_pool": "true", "scratch": "x"})
    for host in ("xs1", "xs2", "xs3"):
        traffic(30)
        nova.add_host(agg, host)
    nova.remove_host(agg, "xs2")
    traffic(40)
    nova.set_metadata(agg, {"scratch": None})
    nova.rename(agg, "pool-b")
    traffic(40)
    support.recorded(len(nova.sent))
    support.wait_for(lambda: db_api.skipped_count() >= instances,
                     what="every instance message counted")
    support.wait_for(lambda: bus.queue_depth() == 0, what="queue to drain")
    assert support.desired(agg) == EXPECTED
    rows = db_api.list_notifications(limit=1000)
    assert len(rows) == len(nova.sent)
    assert sorted({r["event_type"] for r in rows}) == sorted(
        {event_type for _, event_type, _, _ in nova.sent})
    counts = support.outcomes()
    assert counts.get(db_api.REJECTED, 0) == 0
    assert counts[db_api.RECORDED] == len(nova.sent) // 2
    assert db_api.skipped_count() == instances
