"""Intake benchmarks: poolmgr's intake against a no-op listener, same bus.

One run, every timer started at the first delivered message and stopped at
the last one handled:

- ``intake_ratio``: 5,000 aggregate notifications, legacy and versioned, as
  FakeNova publishes them through oslo.messaging (Nova's formats and order),
  5 % of them redelivered copies, into MySQL that already holds 100,000
  notification rows. Three rounds; the figure is the lowest round's ratio
  (goal >= 0.9 in every round).
- ``intake_ratio_mixed``: 50,000 messages, 99 % ``instance.*`` and
  ``compute.instance.*`` in Nova's formats (versioned ``InstanceUpdatePayload``
  on ``versioned_notifications``, legacy ``info_from_instance`` payloads on
  ``notifications``, each with Nova's context) and 1 % aggregate.
  Each ratio is poolmgr's msg/s over the no-op's msg/s. The no-op is a plain
  ``oslo_messaging.get_batch_notification_listener`` whose endpoint acks
  everything: the bus's own speed, with the same batch size, prefetch and
  threads. Each listener runs in its own process, as a daemon's worker.
- ``intake_mixed_msgs_per_s_workers_N``: the mixed stream drained by N intake
  processes sharing one queue (``[notifications] workers``).
- ``aggregate_latency_p99_ms``: publish to stored (after commit), for the
  aggregate notifications of a steady mixed load of 2,000 msg/s, with the
  default ``[notifications] workers`` (goal < 500 ms); beside it the same
  with one worker more.
- ``metrics_scrape_ms`` and ``status_ms`` with 1,000,000 notification rows.

The queues are filled before a drain starts (the mixed stream once, fanned
out to one queue per listener), so the drains measure consumption only.
"""

import contextlib
import datetime
import json
import multiprocessing
import random
import statistics
import time
import uuid

import kombu
import oslo_messaging
import sqlalchemy as sa

import common
from poolmgr.db import api as db_api
from poolmgr.simulator import fakenova
from poolmgr import intake
from poolmgr import bootstrap

TOTAL = 5000
PREFILL_ROWS = 100_000
DUPLICATE_SHARE = 0.05
HOSTS_PER_AGGREGATE = 5
MIXED_TOTAL = 50_000
MIXED_AGGREGATE_SHARE = 0.01
LATENCY_RATE = 2000
LATENCY_SECONDS = 10
SCRAPE_ROWS = 1_000_000
WORKERS = (1, 2)
ROUNDS = 3


# ---------------------------------------------------------------------------
# Configuration and listeners (used in the worker processes too)
# ---------------------------------------------------------------------------

def _conf(settings):
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("control_exchange", settings["exchange"])
    conf.set_override("amqp_durable_queues", True,
                      group="oslo_messaging_rabbit")
    conf.set_override("exchange", settings["exchange"], group="notifications")
    conf.set_override("topics", settings["topics"], group="notifications")
    conf.set_override("pool", settings["pool"], group="notifications")
    conf.set_override("requeue_delay", 0.5, group="notifications")
    for option in ("executor_threads", "batch_size"):
        if option in settings:
            conf.set_override(option, settings[option],
                              group="notifications")
    return conf


def _transport(conf):
    return oslo_messaging.get_notification_transport(conf,
                                                     url=common.RABBIT_URL)


class _Tally:
    """Messages handled, first and last time, shared by worker processes."""

    def __init__(self, shared):
        self.handled, self.first, self.last = shared

    def add(self, count):
        now = time.monotonic()
        with self.handled.get_lock():
            if not self.first.value:
                self.first.value = now
            self.handled.value += count
            self.last.value = now


class NoopEndpoint:
    """Acks everything: what the bus and oslo.messaging cost by themselves."""

    def __init__(self, tally):
        self.tally = tally

    def info(self, messages):
        self.tally.add(len(messages))
        return oslo_messaging.NotificationResult.HANDLED


class CountingEndpoint(intake.AggregateEndpoint):
    """poolmgr's endpoint, counting what the dispatcher hands it."""

    def __init__(self, tally, latencies=None, **kwargs):
        if latencies is not None:
            kwargs["record_events"] = self._timed
        super().__init__(**kwargs)
        self.tally = tally
        self.latencies = latencies

    def _timed(self, batch):
        outcomes = db_api.record_events(batch)
        now = datetime.datetime.utcnow()
        self.latencies.extend((now - e.timestamp).total_seconds()
                              for e in batch)
        return outcomes

    def skip(self, count):
        super().skip(count)
        self.tally.add(count)

    def info(self, messages):
        result = super().info(messages)
        if result == intake.HANDLED:
            self.tally.add(len(messages))
        return result


def _worker(kind, settings, db_url, shared, barrier, stop, results):
    """One listener process: noop or poolmgr, until ``stop`` is set."""
    tally = _Tally(shared)
    conf = _conf(settings)
    if db_url:
        db_api.configure_url(db_url)
    transport = _transport(conf)
    latencies = [] if settings.get("latency") else None
    if kind == "noop":
        targets = [oslo_messaging.Target(topic=topic,
                                         exchange=settings["exchange"])
                   for topic in settings["topics"]]
        listener = oslo_messaging.get_batch_notification_listener(
            transport, targets, [NoopEndpoint(tally)], allow_requeue=True,
            pool=settings["pool"],
            batch_size=conf.notifications.batch_size,
            batch_timeout=conf.notifications.batch_timeout)
    else:
        endpoint = CountingEndpoint(tally, latencies=latencies,
                                    requeue_delay=0.5)
        listener = intake.build_listener(transport, conf, endpoint)
    barrier.wait()
    cpu = time.process_time()
    listener.start(override_pool_size=conf.notifications.executor_threads)
    stop.wait()
    cpu = time.process_time() - cpu
    listener.stop()
    listener.wait()
    if kind != "noop":
        endpoint.flush_counters()
    transport.cleanup()
    results.put((latencies or [], cpu))


class Drain:
    """``workers`` listener processes of one kind on one queue."""

    def __init__(self, kind, settings, db_url=None, workers=1):
        ctx = multiprocessing.get_context("spawn")
        self.shared = (ctx.Value("q", 0), ctx.Value("d", 0.0),
                       ctx.Value("d", 0.0))
        self.stop = ctx.Event()
        self.results = ctx.Queue()
        # NOTE(keep): the children unpickle these; they must outlive start().
        self.barrier = ctx.Barrier(workers)
        self.procs = [ctx.Process(target=_worker, daemon=True, args=(
            kind, settings, db_url, self.shared, self.barrier, self.stop,
            self.results)) for _ in range(workers)]
        for proc in self.procs:
            proc.start()

    @property
    def handled(self):
        return self.shared[0].value

    def wait(self, expected, timeout=300):
        deadline = time.monotonic() + timeout
        while self.handled < expected:
            if time.monotonic() > deadline or not any(
                    p.is_alive() for p in self.procs):
                raise TimeoutError("only %d of %d messages handled"
                                   % (self.handled, expected))
            time.sleep(0.05)
        return self.shared[2].value - self.shared[1].value

    def finish(self):
        """Stop the workers; their latencies, and their CPU seconds."""
        self.stop.set()
        latencies, self.cpu_seconds = [], 0.0
        for _ in self.procs:
            with contextlib.suppress(Exception):
                samples, cpu = self.results.get(timeout=60)
                latencies.extend(samples)
                self.cpu_seconds += cpu
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        return latencies


def _drain(kind, settings, expected, db_url=None, workers=1):
    """Figures of one drain: wall time and the workers' CPU time.

    NOTE(cpu): the listener processes' CPU seconds (all their threads,
    the driver's included) per message barely depend on what else the
    machine runs, unlike msg/s; both are reported.
    """
    drain = Drain(kind, settings, db_url, workers)
    try:
        seconds = drain.wait(expected)
    finally:
        drain.finish()
    return {"seconds": round(seconds, 3),
            "msgs_per_s": round(expected / seconds, 1),
            "cpu_us_per_msg": round(drain.cpu_seconds / expected * 1e6, 1)}


# ---------------------------------------------------------------------------
# What is published
# ---------------------------------------------------------------------------

def _settings(names, pool, **extra):
    return dict(exchange=names.exchange, topics=names.topics, pool=pool,
                **extra)


def _declare(settings):
    """Create a listener's durable queue and bindings, then leave it."""
    conf = _conf(settings)
    transport = _transport(conf)
    try:
        listener = intake.build_listener(transport, conf)
        listener.start(override_pool_size=1)
        listener.stop()
        listener.wait()
    finally:
        transport.cleanup()


def _capture_aggregates(names, unique_target):
    """Raw (routing key, body) of FakeNova's stream, both formats."""
    conf = _conf(_settings(names, "unused"))
    transport = _transport(conf)
    stage = names.pool + "_stage"
    with kombu.Connection(common.amqp_url()) as conn:
        exchange = kombu.Exchange(names.exchange, type="topic", durable=True)
        for topic in names.topics:
            kombu.Queue(stage, exchange=exchange, routing_key=topic + ".info",
                        durable=False)(conn.default_channel).declare()
        try:
            nova = fakenova.FakeNova(
                transport, formats=(fakenova.VERSIONED, fakenova.LEGACY),
                legacy_topics=[names.legacy_topic],
                versioned_topics=[names.versioned_topic],
                first_id=random.randint(1000, 10 ** 6))
            per_aggregate = 4 * (2 + HOSTS_PER_AGGREGATE)
            for n in range(max(1, unique_target // per_aggregate)):
                agg = nova.create_aggregate("bench-%s-%04d" % (names.token, n))
                nova.set_metadata(agg, {"hypervisor_pool": "true"})
                for h in range(HOSTS_PER_AGGREGATE):
                    nova.add_host(agg, "cmp-%04d-%d" % (n, h))
            raw = []
            common.wait_for(
                lambda: common.queue_depth(stage) >= len(nova.sent),
                timeout=60, what="the staged aggregate stream")
            channel = conn.default_channel
            while True:
                message = channel.basic_get(stage, no_ack=True)
                if message is None:
                    break
                raw.append((message.delivery_info["routing_key"],
                            message.body))
        finally:
            transport.cleanup()
            with contextlib.suppress(Exception):
                conn.default_channel.queue_delete(stage)
    return raw


def _nova_context():
    # NOTE(context): what oslo's amqp driver packs from Nova's
    # RequestContext.to_dict() into every message (``_context_*`` keys).
    user, project = uuid.uuid4().hex, uuid.uuid4().hex
    return {"user": user, "tenant": project, "system_scope": None,
            "project": project, "domain": None, "user_domain": "default",
            "project_domain": "default", "is_admin": False,
            "read_only": False, "show_deleted": False, "auth_token": None,
            "request_id": "req-%s" % uuid.uuid4(), "global_request_id": None,
            "resource_uuid": None, "roles": ["member", "reader"],
            "user_identity": "%s %s - default default" % (user, project),
            "is_admin_project": True, "user_id": user, "project_id": project,
            "user_name": "demo", "project_name": "demo",
            "read_deleted": "no", "remote_address": "10.0.0.5",
            "timestamp": "2026-12-01T06:57:11.512345",
            "quota_class": None, "service_catalog": [
                {"type": "image", "name": "glance", "endpoints": [
                    {"region": "RegionOne",
                     "publicURL": "http://10.0.0.5/image"}]},
                {"type": "network", "name": "neutron", "endpoints": [
                    {"region": "RegionOne",
                     "publicURL": "http://10.0.0.5:9696/"}]}]}


def _flavor():
    return {"nova_object.name": "FlavorPayload",
            "nova_object.namespace": "nova", "nova_object.version": "1.4",
            "nova_object.data": {
                "flavorid": "a22d5517-147c-4147-a0d1-e698df5cd4e3",
                "name": "m1.small", "root_gb": 20, "vcpus": 1,
                "ephemeral_gb": 0, "memory_mb": 2048, "disabled": False,
                "rxtx_factor": 1.0, "extra_specs": {"hw:cpu_policy": "shared"},
                "swap": 0, "is_public": True, "vcpu_weight": 0,
                "description": None, "projects": None}}


def _versioned_instance_payload(instance, host):
    return {
        "nova_object.name": "InstanceUpdatePayload",
        "nova_object.namespace": "nova", "nova_object.version": "2.0",
        "nova_object.data": {
            "uuid": instance, "user_id": "demo", "tenant_id": "demo",
            "reservation_id": "r-%s" % instance[:8], "display_name": "vm",
            "display_description": "vm", "host_name": "vm", "host": host,
            "node": host, "os_type": None, "architecture": "x86_64",
            "availability_zone": "nova", "flavor": _flavor(),
            "image_uuid": "155d900f-4e14-4e4c-a73d-069cbf4541e6",
            "key_name": "ops", "kernel_id": "", "ramdisk_id": "",
            "created_at": "2026-12-01T06:50:00Z", "launched_at": None,
            "terminated_at": None, "deleted_at": None,
            "state": "active", "power_state": "running",
            "task_state": None, "progress": 0, "metadata": {"role": "web"},
            "locked": False, "locked_reason": None,
            "auto_disk_config": "MANUAL",
            "action_initiator_user": "demo",
            "action_initiator_project": "demo", "request_id": None,
            "block_devices": [], "tags": ["web"],
            "trusted_image_certificates": None, "shares": [],
            "ip_addresses": [{
                "nova_object.name": "IpPayload",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.0",
                "nova_object.data": {
                    "mac": "fa:16:3e:4c:2c:30", "address": "192.168.1.3",
                    "port_uuid": str(uuid.uuid4()), "meta": {},
                    "version": 4, "label": "private-network",
                    "device_name": "tapce531f90-19"}}],
            "audit_period": {
                "nova_object.name": "AuditPeriodPayload",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.0",
                "nova_object.data": {
                    "audit_period_beginning": "2026-12-01T00:00:00Z",
                    "audit_period_ending": "2026-12-01T06:57:11Z"}},
            "bandwidth": [], "old_display_name": None,
            "state_update": {
                "nova_object.name": "InstanceStateUpdatePayload",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.0",
                "nova_object.data": {
                    "old_state": "active", "state": "active",
                    "old_task_state": "powering-on",
                    "new_task_state": None}},
            "updated_at": "2026-12-01T06:57:11Z"}}


def _legacy_instance_payload(instance, host):
    return {
        "tenant_id": "demo", "user_id": "demo", "instance_id": instance,
        "display_name": "vm", "reservation_id": "r-%s" % instance[:8],
        "hostname": "vm", "instance_type": "m1.small",
        "instance_type_id": 5, "instance_flavor_id": "2", "memory_mb": 2048,
        "disk_gb": 20, "root_gb": 20, "ephemeral_gb": 0, "vcpus": 1,
        "host": host, "node": host, "architecture": "x86_64",
        "os_type": None, "kernel_id": "", "ramdisk_id": "",
        "created_at": "2026-12-01 06:50:00+00:00", "launched_at": "",
        "terminated_at": "", "deleted_at": "", "state": "active",
        "state_description": "", "progress": "", "access_ip_v4": None,
        "access_ip_v6": None, "cell_name": "",
        "availability_zone": "nova", "metadata": {"role": "web"},
        "image_meta": {"hw_disk_bus": "virtio", "min_ram": "0",
                       "min_disk": "20", "disk_format": "qcow2",
                       "container_format": "bare",
                       "base_image_ref": "155d900f-4e14"},
        "image_ref_url": "http://10.0.0.5/image/v2/images/155d900f-4e14",
        "fixed_ips": [{"label": "private-network", "vif_mac":
                       "fa:16:3e:4c:2c:30", "meta": {}, "type": "fixed",
                       "version": 4, "address": "192.168.1.3",
                       "floating_ips": []}],
        "old_state": "active", "old_task_state": "powering-on",
        "new_task_state": None, "audit_period_beginning":
        "2026-12-01T00:00:00.000000", "audit_period_ending":
        "2026-12-01T06:57:11.000000", "bandwidth": {},
        "old_display_name": None}


_INSTANCE_TYPES = (
    # (topic attribute, event type, payload builder, share)
    ("versioned_topic", "instance.update", _versioned_instance_payload),
    ("legacy_topic", "compute.instance.update", _legacy_instance_payload),
    ("versioned_topic", "instance.power_on.end", _versioned_instance_payload),
    ("legacy_topic", "compute.instance.exists", _legacy_instance_payload),
)


def _envelope(message):
    return json.dumps({"oslo.version": "2.0",
                       "oslo.message": json.dumps(message)})


def _now_stamp():
    return str(datetime.datetime.utcnow())


def _instance_messages(names, count, rng):
    """Raw (routing key, body) of ``count`` instance notifications."""
    context = {"_context_%s" % k: v for k, v in _nova_context().items()}
    out = []
    for n in range(count):
        topic_attr, event_type, build = _INSTANCE_TYPES[n % 4 if n % 10 == 9
                                                        else n % 2]
        host = "compute%d" % rng.randint(1, 200)
        message = {"message_id": str(uuid.uuid4()),
                   "publisher_id": ("nova-compute:%s" % host
                                    if topic_attr == "versioned_topic"
                                    else "compute.%s" % host),
                   "event_type": event_type, "priority": "INFO",
                   "payload": build(str(uuid.uuid4()), host),
                   "timestamp": _now_stamp(),
                   "_unique_id": uuid.uuid4().hex}
        message.update(context)
        out.append((getattr(names, topic_attr) + ".info", _envelope(message)))
    return out


def _restamp(body):
    """The same notification, published now under a new message id."""
    outer = json.loads(body)
    inner = json.loads(outer["oslo.message"])
    inner["message_id"] = str(uuid.uuid4())
    inner["timestamp"] = _now_stamp()
    inner["_unique_id"] = uuid.uuid4().hex
    return _envelope(inner)


def _publish(names, stream):
    with kombu.Connection(common.amqp_url()) as conn:
        producer = conn.Producer()
        exchange = kombu.Exchange(names.exchange, type="topic", durable=True)
        for routing_key, body in stream:
            producer.publish(body, exchange=exchange, routing_key=routing_key,
                             content_type="application/json",
                             content_encoding="utf-8", declare=[])


def _with_copies(unique, share, rng):
    """The stream plus copies of some messages, each after its original.

    NOTE(oslo-dup-cache): oslo's amqp driver drops, without an ack, a
    message whose ``_unique_id`` it saw among its last 16, and in this
    benchmark it did so even for copies 68 messages later; so a copy keeps
    the body and message_id (what poolmgr deduplicates on) under a fresh
    ``_unique_id``.
    """
    stream = list(unique)
    copies = int(len(unique) * share / (1 - share))
    for original in rng.sample(range(len(unique)), copies):
        key, body = unique[original]
        outer = json.loads(body)
        inner = json.loads(outer["oslo.message"])
        inner["_unique_id"] = uuid.uuid4().hex
        position = rng.randint(stream.index(unique[original]) + 1,
                               len(stream))
        stream.insert(position, (key, _envelope(inner)))
    return stream, copies


# ---------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------

_FILL = """
INSERT INTO notifications (message_id, event_type, publisher_id,
    aggregate_id, outcome, reason, event_time, received_at)
SELECT CONCAT('fill-', seq),
       ELT(1 + seq %% 4, 'aggregate.add_host.end', 'aggregate.addhost.end',
           'aggregate.add_host.start', 'aggregate.addhost.start'),
       'nova-api:bench', 1 + seq %% 500,
       ELT(1 + seq %% 3, 'applied', 'recorded', 'stale'), NULL,
       NOW(6) - INTERVAL seq SECOND, NOW(6) - INTERVAL seq SECOND
FROM seq_1_to_%d
"""

_FILL_COUNTERS = """
INSERT INTO counters (name, value)
SELECT CONCAT('notifications|', outcome, '|', event_type), COUNT(*)
FROM notifications GROUP BY outcome, event_type
ON DUPLICATE KEY UPDATE value = value + VALUES(value)
"""


def _fill(rows):
    """Add ``rows`` old notification rows (and their counters), fast."""
    with db_api.get_engine().begin() as conn:
        conn.execute(sa.text(_FILL % rows))
        conn.execute(sa.text(_FILL_COUNTERS))


@contextlib.contextmanager
def _database(prefill=0):
    with common.scratch_database() as url:
        if prefill:
            _fill(prefill)
        yield url


# ---------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------

def measure_aggregates(total=TOTAL, prefill=PREFILL_ROWS, rounds=ROUNDS):
    """intake_ratio: aggregate notifications only, 5 % copies.

    NOTE(rounds): on a shared machine one drain's speed swings by 2x from
    one moment to the next; ``rounds`` pairs of drains (no-op, then
    poolmgr into a fresh database) and the median ratio are steadier.
    """
    rng = random.Random(20261201)
    names = common.Names("pmbench_intake")
    pairs = [(_settings(names, names.pool + "_noop%d" % n),
              _settings(names, names.pool + "_real%d" % n))
             for n in range(rounds)]
    queues = [s["pool"] for pair in pairs for s in pair]
    try:
        unique = _capture_aggregates(names, int(total * (1 - DUPLICATE_SHARE)))
        stream, copies = _with_copies(unique, DUPLICATE_SHARE, rng)
        for pair in pairs:
            for settings in pair:
                _declare(settings)
        _publish(names, stream)
        sent = len(stream)
        for pool in queues:
            common.wait_for(lambda: common.queue_depth(pool) >= sent,
                            timeout=60, what="messages to reach the queue")
        runs = []
        for noop, real in pairs:
            noop_figures = _drain("noop", noop, sent)
            with _database(prefill) as url:
                real_figures = _drain("poolmgr", real, sent, url)
                stored = sum(1 for r in db_api.list_notifications(
                    limit=sent + 10) if not r["message_id"].startswith(
                    "fill-"))
                duplicates = sum(db_api.duplicate_counts().values())
            runs.append({"noop_msgs_per_s": noop_figures["msgs_per_s"],
                         "poolmgr_msgs_per_s": real_figures["msgs_per_s"],
                         "noop_cpu_us_per_msg": noop_figures["cpu_us_per_msg"],
                         "poolmgr_cpu_us_per_msg":
                             real_figures["cpu_us_per_msg"],
                         "ratio": round(real_figures["msgs_per_s"]
                                        / noop_figures["msgs_per_s"], 3),
                         "stored_rows": stored,
                         "duplicates_counted": duplicates})
    finally:
        names.cleanup(extra_queues=queues)
    median = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    # NOTE(every-round): the goal holds in every round, so the figure is
    # the lowest round's ratio (the median is in the details).
    return {"sent": sent, "unique": len(unique), "copies": copies,
            "prefilled_rows": prefill, "rounds": runs,
            "stored_rows": median["stored_rows"],
            "duplicates_counted": median["duplicates_counted"],
            "noop": {"msgs_per_s": median["noop_msgs_per_s"],
                     "cpu_us_per_msg": median["noop_cpu_us_per_msg"]},
            "poolmgr": {"msgs_per_s": median["poolmgr_msgs_per_s"],
                        "cpu_us_per_msg": median["poolmgr_cpu_us_per_msg"]},
            "median_ratio": median["ratio"],
            "rounds_met": sum(1 for r in runs if r["ratio"] >= 0.9),
            "ratio": min(r["ratio"] for r in runs)}


def measure_mixed(total=MIXED_TOTAL, workers=WORKERS):
    """intake_ratio_mixed, and the same stream with N intake workers."""
    rng = random.Random(20261202)
    names = common.Names("pmbench_mixed")
    noop = _settings(names, names.pool + "_noop")
    noop_after = _settings(names, names.pool + "_noop_after")
    real = {n: _settings(names, names.pool + "_w%d" % n) for n in workers}
    queues = [noop["pool"], noop_after["pool"]] + [
        s["pool"] for s in real.values()]
    try:
        aggregates = _capture_aggregates(
            names, int(total * MIXED_AGGREGATE_SHARE))
        instances = _instance_messages(names, total - len(aggregates), rng)
        stream = list(instances)
        for raw in aggregates:
            stream.insert(rng.randint(0, len(stream)), raw)
        for settings in [noop, noop_after] + list(real.values()):
            _declare(settings)
        t0 = time.monotonic()
        _publish(names, stream)
        publish_seconds = time.monotonic() - t0
        sent = len(stream)
        for pool in queues:
            common.wait_for(lambda: common.queue_depth(pool) >= sent,
                            timeout=120, what="messages to reach the queue")
        figures = {"sent": sent, "aggregate_messages": len(aggregates),
                   "publish_seconds": round(publish_seconds, 2),
                   "noop": _drain("noop", noop, sent)}
        for n, settings in real.items():
            with _database() as url:
                figures["poolmgr_workers_%d" % n] = _drain(
                    "poolmgr", settings, sent, url, workers=n)
                figures["stored_rows_workers_%d" % n] = len(
                    db_api.list_notifications(limit=sent))
                figures["skipped_counted_workers_%d" % n] = (
                    db_api.skipped_count())
        # NOTE(bracket): a no-op drain before and after the poolmgr ones;
        # the ratio is against their mean (see measure_aggregates' NOTE).
        figures["noop_after"] = _drain("noop", noop_after, sent)
    finally:
        names.cleanup(extra_queues=queues)
    first = figures["poolmgr_workers_%d" % workers[0]]["msgs_per_s"]
    figures["noop_mean_msgs_per_s"] = round(
        (figures["noop"]["msgs_per_s"]
         + figures["noop_after"]["msgs_per_s"]) / 2, 1)
    figures["ratio"] = first / figures["noop_mean_msgs_per_s"]
    return figures


def _paced_publisher(exchange_name, stream, rate, seconds, counter):
    """Publish ``rate`` msg/s for ``seconds`` (aggregates re-stamped)."""
    with kombu.Connection(common.amqp_url()) as conn:
        producer = conn.Producer()
        exchange = kombu.Exchange(exchange_name, type="topic", durable=True)
        start = time.monotonic()
        sent = 0
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= seconds:
                break
            due = int(elapsed * rate) + 1
            while sent < due:
                routing_key, body, aggregate = stream[sent % len(stream)]
                if aggregate:
                    body = _restamp(body)
                producer.publish(body, exchange=exchange,
                                 routing_key=routing_key,
                                 content_type="application/json",
                                 content_encoding="utf-8", declare=[])
                sent += 1
            time.sleep(0.005)
        counter.value = sent


def measure_latency(rate=LATENCY_RATE, seconds=LATENCY_SECONDS, workers=1):
    """aggregate_latency_*: publish to stored under a steady mixed load."""
    rng = random.Random(20261203)
    names = common.Names("pmbench_latency")
    settings = _settings(names, names.pool, latency=True)
    try:
        aggregates = _capture_aggregates(names, 100)
        instances = _instance_messages(names, 4000, rng)
        stream = [(k, b, False) for k, b in instances]
        every = int(1 / MIXED_AGGREGATE_SHARE)
        for n in range(len(stream) // every):
            key, body = aggregates[n % len(aggregates)]
            stream.insert(n * every + rng.randint(0, every - 1),
                          (key, body, True))
        _declare(settings)
        with _database() as url:
            drain = Drain("poolmgr", settings, url, workers=workers)
            ctx = multiprocessing.get_context("spawn")
            counter = ctx.Value("q", 0)
            publisher = ctx.Process(target=_paced_publisher, args=(
                names.exchange, stream, rate, seconds, counter))
            # NOTE(warm-up): the worker process imports and connects
            # before the load starts.
            time.sleep(5)
            publisher.start()
            publisher.join(seconds + 60)
            sent = counter.value
            try:
                drained_in = drain.wait(sent, timeout=120)
                backlog = 0
            except TimeoutError:
                drained_in, backlog = None, sent - drain.handled
            latencies = sorted(drain.finish())
    finally:
        names.cleanup()
    ms = [x * 1000 for x in latencies]

    def pct(p):
        return round(ms[min(len(ms) - 1, int(len(ms) * p))], 1) if ms else None
    return {"rate_msgs_per_s": rate, "seconds": seconds, "sent": sent,
            "workers": workers,
            "consumed_msgs_per_s": (round(sent / drained_in, 1)
                                    if drained_in else None),
            "aggregate_samples": len(ms), "backlog_at_end": backlog,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": round(ms[-1], 1) if ms else None}


def _timed(func, runs=5):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        func()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def measure_scrape(rows=SCRAPE_ROWS):
    """/metrics and status over a notification log of ``rows`` rows."""
    from prometheus_client import exposition

    from poolmgr.cmd import views
    from poolmgr import metrics
    with _database() as url:
        t0 = time.monotonic()
        _fill(rows)
        fill_seconds = time.monotonic() - t0
        registry = metrics.build_registry()
        scrape_ms = _timed(lambda: exposition.generate_latest(registry))
        status_ms = _timed(lambda: views.status_view(
            views.all_pool_views(db_api.all_pool_rows()),
            db_api.intake_totals()))
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            group_by_ms = _timed(lambda: conn.execute(sa.text(
                "SELECT event_type, outcome, COUNT(*) FROM notifications "
                "GROUP BY event_type, outcome")).all(), runs=3)
        engine.dispose()
        text = exposition.generate_latest(registry).decode()
    return {"rows": rows, "fill_seconds": round(fill_seconds, 1),
            "scrape_ms": scrape_ms, "status_ms": status_ms,
            "old_group_by_ms": group_by_ms,
            "database_up": "poolmgr_database_up 1.0" in text}


def default_workers():
    """``[notifications] workers`` as the daemon ships it."""
    from poolmgr.conf import notifications as notification_opts
    return next(opt.default for opt in notification_opts.OPTS
                if opt.dest == "workers")


def run(results, scale=1.0):
    total = max(200, int(TOTAL * scale))
    agg = measure_aggregates(total, int(PREFILL_ROWS * scale))
    ratio = agg.pop("ratio")
    results.add("intake_ratio", round(ratio, 3), "x no-op", (">=", 0.9),
                details=agg)
    print("   aggregates: %d messages (%d copies) into %d rows, median of "
          "%d rounds: no-op %.0f/s, poolmgr %.0f/s, %d rows stored, %d "
          "duplicates counted; ratios %s (the lowest is the figure)" % (
              agg["sent"], agg["copies"], agg["prefilled_rows"],
              len(agg["rounds"]), agg["noop"]["msgs_per_s"],
              agg["poolmgr"]["msgs_per_s"], agg["stored_rows"],
              agg["duplicates_counted"],
              ", ".join("%.2f" % r["ratio"] for r in agg["rounds"])),
          flush=True)
    print("   aggregates, CPU per message: no-op %.0f us, poolmgr %.0f us"
          % (agg["noop"]["cpu_us_per_msg"], agg["poolmgr"]["cpu_us_per_msg"]),
          flush=True)

    mixed = measure_mixed(max(2000, int(MIXED_TOTAL * scale)))
    ratio = mixed.pop("ratio")
    results.add("intake_ratio_mixed", round(ratio, 3), "x no-op",
                (">=", 0.9), details=mixed)
    print("   mixed, CPU per message: no-op %.0f/%.0f us, %s" % (
        mixed["noop"]["cpu_us_per_msg"], mixed["noop_after"]["cpu_us_per_msg"],
        ", ".join("%d worker(s) %.0f us" % (
            n, mixed["poolmgr_workers_%d" % n]["cpu_us_per_msg"])
            for n in WORKERS)), flush=True)
    for n in WORKERS:
        results.add("intake_mixed_msgs_per_s_workers_%d" % n,
                    mixed["poolmgr_workers_%d" % n]["msgs_per_s"], "msg/s",
                    details={"noop_msgs_per_s":
                             mixed["noop_mean_msgs_per_s"]})
    print("   mixed: %d messages (%d aggregate): no-op %.0f/s and %.0f/s, %s"
          % (mixed["sent"], mixed["aggregate_messages"],
             mixed["noop"]["msgs_per_s"], mixed["noop_after"]["msgs_per_s"],
             ", ".join(
                 "%d worker(s) %.0f/s (%d rows, %d skipped)" % (
                     n, mixed["poolmgr_workers_%d" % n]["msgs_per_s"],
                     mixed["stored_rows_workers_%d" % n],
                     mixed["skipped_counted_workers_%d" % n])
                 for n in WORKERS)), flush=True)

    seconds = max(3, int(LATENCY_SECONDS * scale))
    default = default_workers()
    # NOTE(default-workers): the goal is on the daemon as shipped, so the
    # figure with a goal uses ``[notifications] workers``' default; the
    # others show what one more worker (or a lighter load) would give.
    for name, rate, workers, goal in (
            ("aggregate_latency_p99_ms", LATENCY_RATE, default, ("<", 500)),
            ("aggregate_latency_p99_ms_workers_%d" % (default + 1),
             LATENCY_RATE, default + 1, None),
            ("aggregate_latency_p99_ms_at_500", 500, default, None)):
        latency = measure_latency(rate, seconds, workers)
        results.add(name, latency["p99_ms"], "ms", goal, details=latency)
        print("   latency at %d msg/s, %d worker(s): %d aggregate samples, "
              "p50 %s ms, p99 %s ms, max %s ms; consumed %s msg/s, backlog "
              "%d" % (rate, workers, latency["aggregate_samples"],
                      latency["p50_ms"], latency["p99_ms"],
                      latency["max_ms"], latency["consumed_msgs_per_s"],
                      latency["backlog_at_end"]), flush=True)

    scrape = measure_scrape(max(10_000, int(SCRAPE_ROWS * scale)))
    results.add("metrics_scrape_ms", scrape["scrape_ms"], "ms",
                details=scrape)
    results.add("status_ms", scrape["status_ms"], "ms")
    print("   %d rows: scrape %.1f ms, status %.1f ms (a GROUP BY over the "
          "log: %.0f ms)" % (scrape["rows"], scrape["scrape_ms"],
                             scrape["status_ms"], scrape["old_group_by_ms"]),
          flush=True)
    return {"aggregates": agg, "mixed": mixed, "latency": latency,
            "scrape": scrape}
