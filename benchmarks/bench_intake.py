"""intake_ratio: poolmgr's intake against a no-op listener on the same bus.

5,000 versioned notifications (about 5 % of them redelivered copies, as
at-least-once delivery produces) are published once through oslo.messaging's
Notifier, exactly as Nova sends them, to an exchange with two pool queues
bound the same way. Then two listeners built by
``poolmgr.notifications.build_listener`` (same batch size, prefetch, queue
kind and executor threads as the daemon) drain one queue each:

- a no-op endpoint that acknowledges everything (the bus's own speed);
- poolmgr's ``AggregateEndpoint`` recording into a fresh MySQL database
  (parsed, deduplicated by message_id, folded into desired state).

intake_ratio = events/s of poolmgr / events/s of the no-op. Goal >= 0.9.
"""

import threading
import time

import kombu
import oslo_messaging

import common
from poolmgr.db import api as db_api
from poolmgr import fakenova
from poolmgr import notifications
from poolmgr import service

TOTAL = 5000
DUPLICATE_SHARE = 0.05
HOSTS_PER_AGGREGATE = 5


class _Counting:
    """Counts the messages a batch endpoint acknowledged; times the drain."""

    def _setup_counter(self, expected):
        self.expected = expected
        self.handled = 0
        self.first = None
        self.done = threading.Event()
        self._count_lock = threading.Lock()

    def _count(self, messages, result):
        with self._count_lock:
            if self.first is None:
                self.first = time.monotonic()
            if result in (None, notifications.HANDLED):
                self.handled += len(messages)
            if self.handled >= self.expected:
                self.done.set()


class NoopEndpoint(_Counting):
    filter_rule = oslo_messaging.NotificationFilter(event_type=r"^aggregate\.")

    def __init__(self, expected):
        self._setup_counter(expected)

    def info(self, messages):
        self._count(messages, notifications.HANDLED)
        return notifications.HANDLED

    def reject(self, *args):
        return notifications.HANDLED, "rejected"


class PoolmgrEndpoint(notifications.AggregateEndpoint, _Counting):
    def __init__(self, expected, **kwargs):
        super().__init__(**kwargs)
        self._setup_counter(expected)

    def info(self, messages):
        result = super().info(messages)
        self._count(messages, result)
        return result


def _conf(names, pool):
    # NOTE(one-conf): poolmgr's OptGroups are module-level objects and
    # oslo.config keeps overrides on them, so two ConfigOpts in one process
    # share [notifications] overrides; set the pool right before each use.
    conf = service.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("control_exchange", names.exchange)
    conf.set_override("amqp_durable_queues", True,
                      group="oslo_messaging_rabbit")
    conf.set_override("exchange", names.exchange, group="notifications")
    conf.set_override("topics", [names.versioned_topic],
                      group="notifications")
    conf.set_override("pool", pool, group="notifications")
    conf.set_override("requeue_delay", 0.5, group="notifications")
    return conf


def _transport(conf):
    return oslo_messaging.get_notification_transport(conf,
                                                     url=common.RABBIT_URL)


def _with_pool(conf, pool):
    conf.set_override("pool", pool, group="notifications")
    return conf


def _declare(conf):
    """Start and stop a listener once so its durable queue exists."""
    # NOTE(transport): one transport per listener, as in separate processes;
    # oslo pools listening connections and a reused one keeps the consumers
    # of the listener that used it before.
    transport = _transport(conf)
    try:
        listener = notifications.build_listener(transport, conf,
                                                endpoint=NoopEndpoint(0))
        listener.start(override_pool_size=1)
        listener.stop()
        listener.wait()
    finally:
        transport.cleanup()


def _publish(transport, names, total):
    """Publish ``total`` messages: unique ones from FakeNova plus copies."""
    nova = fakenova.FakeNova(transport, formats=(fakenova.VERSIONED,),
                             versioned_topics=[names.versioned_topic])
    unique_target = int(total * (1 - DUPLICATE_SHARE))
    per_aggregate = 2 * (2 + HOSTS_PER_AGGREGATE)
    aggregates = max(1, unique_target // per_aggregate)
    for n in range(aggregates):
        agg = nova.create_aggregate("bench-%04d" % n)
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
        for h in range(HOSTS_PER_AGGREGATE):
            nova.add_host(agg, "cmp-%04d-%d" % (n, h))
    unique = len(nova.sent)
    duplicates = max(0, total - unique)
    # NOTE(copies): a redelivery is the same body again; take them from a
    # staging queue bound like ours and put them back on the exchange.
    with kombu.Connection(common.amqp_url()) as conn:
        channel = conn.default_channel
        copies = []
        stage = names.pool + "_stage"
        while len(copies) < duplicates:
            message = channel.basic_get(stage, no_ack=True)
            if message is None:
                break
            copies.append(message)
        producer = conn.Producer()
        exchange = kombu.Exchange(names.exchange, type="topic", durable=True)
        for message in copies:
            producer.publish(message.body, exchange=exchange,
                             routing_key=message.delivery_info["routing_key"],
                             content_type=message.content_type,
                             content_encoding=message.content_encoding,
                             declare=[])
        channel.queue_delete(stage)
    return unique, len(copies)


def _drain(conf, endpoint, threads, timeout=300):
    transport = _transport(conf)
    listener = notifications.build_listener(transport, conf,
                                            endpoint=endpoint)
    start = time.monotonic()
    listener.start(override_pool_size=threads)
    try:
        if not endpoint.done.wait(timeout):
            raise TimeoutError("only %d of %d messages handled"
                               % (endpoint.handled, endpoint.expected))
        elapsed = time.monotonic() - start
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
    return elapsed


def measure(total=TOTAL, threads=None):
    """Return a dict of figures (also used by the tests at small scale)."""
    names = common.Names("pmbench_intake")
    noop_pool, real_pool = names.pool + "_noop", names.pool
    conf = _conf(names, real_pool)
    threads = threads or conf.notifications.executor_threads
    transport = _transport(conf)
    try:
        with common.scratch_database():
            _declare(_with_pool(conf, noop_pool))
            _declare(_with_pool(conf, real_pool))
            with kombu.Connection(common.amqp_url()) as conn:
                exchange = kombu.Exchange(names.exchange, type="topic",
                                          durable=True)
                kombu.Queue(names.pool + "_stage", exchange=exchange,
                            routing_key="%s.info" % names.versioned_topic,
                            durable=False)(conn.default_channel).declare()
            t0 = time.monotonic()
            unique, copies = _publish(transport, names, total)
            publish_seconds = time.monotonic() - t0
            sent = unique + copies
            common.wait_for(lambda: common.queue_depth(real_pool) >= sent,
                            timeout=60, what="messages to reach the queue")
            noop = NoopEndpoint(sent)
            noop_seconds = _drain(_with_pool(conf, noop_pool), noop, threads)
            real = PoolmgrEndpoint(sent, requeue_delay=0.5)
            real_seconds = _drain(_with_pool(conf, real_pool), real, threads)
            rows = db_api.list_notifications(limit=sent + 10)
            counts = {}
            for (_, outcome), n in db_api.notification_counts().items():
                counts[outcome] = counts.get(outcome, 0) + n
    finally:
        transport.cleanup()
        names.cleanup(extra_queues=[noop_pool, names.pool + "_stage"])
    noop_rate = sent / noop_seconds
    real_rate = sent / real_seconds
    return {"sent": sent, "unique": unique, "copies": copies,
            "stored_rows": len(rows), "outcomes": counts,
            "publish_seconds": round(publish_seconds, 2),
            "noop_seconds": round(noop_seconds, 3),
            "poolmgr_seconds": round(real_seconds, 3),
            "noop_events_per_s": round(noop_rate, 1),
            "poolmgr_events_per_s": round(real_rate, 1),
            "executor_threads": threads,
            "batch_size": service.build_conf().notifications.batch_size,
            "ratio": real_rate / noop_rate}


def run(results, scale=1.0):
    total = max(200, int(TOTAL * scale))
    figures = measure(total)
    ratio = figures.pop("ratio")
    results.add("intake_ratio", round(ratio, 3), "x no-op", (">=", 0.9),
                details=figures)
    results.add("intake_events_per_s", figures["poolmgr_events_per_s"],
                "events/s", details={"noop_events_per_s":
                                     figures["noop_events_per_s"]})
    print("   %d messages (%d unique): no-op %.0f/s, poolmgr %.0f/s, "
          "%d rows stored" % (figures["sent"], figures["unique"],
                              figures["noop_events_per_s"],
                              figures["poolmgr_events_per_s"],
                              figures["stored_rows"]))
    if figures["stored_rows"] != figures["unique"]:
        print("   WARNING: %d rows for %d unique messages"
              % (figures["stored_rows"], figures["unique"]))
    return figures
