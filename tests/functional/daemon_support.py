"""Running ``poolmgr --config-file`` as a subprocess against real services.

Each test gets its own exchange, topics and queue (a random token in every
name), so runs never cross-talk on a shared RabbitMQ; everything declared
is deleted afterwards.
"""

import contextlib
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import kombu
import oslo_messaging
import sqlalchemy as sa

from poolmgr import bootstrap
from poolmgr.db import api as db_api
from poolmgr.simulator import fakenova
from tests.conftest import service_unavailable

XAPI_SECRET = "xapi-S3cr3t-%s" % uuid.uuid4().hex[:6]

# The engine of the daemons these tests start: quick to retry, no resync
# within a test.
ENGINE = """
[reconciler]
poll_interval = 0.2
retry_initial_backoff = 0.1
retry_max_backoff = 1
lease_time = 15
resync_interval = 600
"""


def poolmgr_binary():
    found = pathlib.Path(sys.executable).with_name("poolmgr")
    return str(found) if found.exists() else shutil.which("poolmgr")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def amqp_url(rabbit_url):
    return rabbit_url.replace("rabbit://", "amqp://", 1)


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def rabbitmqctl(*args):
    """rabbitmqctl's CompletedProcess; skips (or fails, see
    tests/conftest.py) when it cannot be run or refuses."""
    try:
        result = subprocess.run(["rabbitmqctl"] + list(args),
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        service_unavailable("rabbitmqctl", exc)
    if result.returncode != 0:
        service_unavailable("rabbitmqctl %s" % args[0],
                            result.stderr[-300:].strip())
    return result


@contextlib.contextmanager
def refused_broker_user(rabbit_url):
    """(url, accept): a transport URL for a RabbitMQ user of its own, on
    ``rabbit_url``'s host and vhost, that the broker refuses (wrong
    password) until ``accept()``; the user is deleted afterwards."""
    user = "pm_broker_%s" % uuid.uuid4().hex[:8]
    password = "right-%s" % uuid.uuid4().hex[:8]
    where = rabbit_url.rsplit("@", 1)[1]
    vhost = where.split("/", 1)[1] if "/" in where else ""
    rabbitmqctl("add_user", user, "not-yet-%s" % uuid.uuid4().hex[:8])
    try:
        rabbitmqctl("set_permissions", "-p", vhost or "/", user, ".*", ".*",
                    ".*")
        yield ("rabbit://%s:%s@%s" % (user, password, where),
               lambda: rabbitmqctl("change_password", user, password))
    finally:
        rabbitmqctl("delete_user", user)


class Bus:
    """Names of one test's exchange, topics and queue, and a publisher."""

    def __init__(self, rabbit_url):
        token = uuid.uuid4().hex[:10]
        self.rabbit_url = rabbit_url
        self.exchange = "pmtest_%s" % token
        self.versioned_topic = "pmtest_%s_versioned_notifications" % token
        self.legacy_topic = "pmtest_%s_notifications" % token
        self.pool = "pmtest_%s_poolmgr" % token
        self._transport = None

    @property
    def topics(self):
        return [self.versioned_topic, self.legacy_topic]

    def transport(self):
        if self._transport is None:
            conf = bootstrap.build_conf()
            conf([])
            conf.set_override("control_exchange", self.exchange)
            conf.set_override("amqp_durable_queues", True,
                              group="oslo_messaging_rabbit")
            self._transport = oslo_messaging.get_notification_transport(
                conf, url=self.rabbit_url)
        return self._transport

    def nova(self, formats=(fakenova.VERSIONED, fakenova.LEGACY), **kw):
        """A FakeNova publishing on this test's exchange and topics."""
        return fakenova.FakeNova(self.transport(), formats=formats,
                                 legacy_topics=[self.legacy_topic],
                                 versioned_topics=[self.versioned_topic],
                                 **kw)

    def publish_raw(self, body, topic=None, content_type="application/json",
                    exchange=None):
        """Put bytes on the exchange as oslo would route them."""
        with kombu.Connection(amqp_url(self.rabbit_url)) as conn:
            producer = conn.Producer()
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            producer.publish(
                body, exchange=kombu.Exchange(exchange or self.exchange,
                                              type="topic", durable=True),
                routing_key="%s.info" % (topic or self.versioned_topic),
                content_type=content_type, content_encoding="utf-8",
                declare=[])

    def queue_depth(self, name=None):
        with kombu.Connection(amqp_url(self.rabbit_url)) as conn:
            _, count, _ = conn.default_channel.queue_declare(
                name or self.pool, passive=True)
            return count

    def cleanup(self):
        if self._transport is not None:
            self._transport.cleanup()
        with kombu.Connection(amqp_url(self.rabbit_url)) as conn:
            for queue in [self.pool] + ["%s.info" % t for t in self.topics]:
                with contextlib.suppress(Exception):
                    conn.default_channel.queue_delete(queue)
            with contextlib.suppress(Exception):
                conn.default_channel.exchange_delete(self.exchange)


class Daemon:
    """``poolmgr --config-file F`` in a subprocess, its log in a file.

    Every daemon a test starts is remembered in ``started`` so that a
    failing test's report carries the tail of each one's log
    (tests/conftest.py).
    """

    started = []

    def __init__(self, tmp_path, bus, database_url, debug=True,
                 requeue_delay=0.5, metrics_port=0, extra=""):
        self.bus = bus
        self.config = tmp_path / ("poolmgr-%s.conf" % uuid.uuid4().hex[:6])
        self.log = tmp_path / ("poolmgr-%s.log" % uuid.uuid4().hex[:6])
        self.metrics_port = metrics_port
        self.config.write_text(textwrap.dedent("""\
            [DEFAULT]
            transport_url = {rabbit}
            debug = {debug}
            graceful_shutdown_timeout = 20
            [database]
            connection = {db}
            [notifications]
            exchange = {exchange}
            topics = {topics}
            pool = {pool}
            requeue_delay = {delay}
            executor_threads = 8
            [oslo_messaging_rabbit]
            amqp_durable_queues = true
            [xenserver]
            connection_username = root
            connection_password = {secret}
            [metrics]
            prometheus_port = {port}
            """).format(rabbit=bus.rabbit_url, debug=str(debug).lower(),
                        db=database_url, exchange=bus.exchange,
                        topics=",".join(bus.topics), pool=bus.pool,
                        delay=requeue_delay, secret=XAPI_SECRET,
                        port=metrics_port) + extra)
        self.proc = None

    def start(self, wait=True):
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [poolmgr_binary(), "--config-file", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        Daemon.started.append(self)
        if wait:
            wait_for(lambda: "listening on exchange" in self.log_text()
                     or self.proc.poll() is not None, timeout=60,
                     what="the intake to listen")
            assert self.proc.poll() is None, self.log_text()[-3000:]
        return self

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() \
            else ""

    def set_option(self, line_from, line_to):
        self.config.write_text(self.config.read_text().replace(line_from,
                                                               line_to))

    def children(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid",
                              str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return sorted(int(p) for p in out.split())

    def process_titles(self):
        pids = [self.proc.pid] + self.children()
        out = subprocess.run(["ps", "-o", "args=", "-p",
                              ",".join(str(p) for p in pids)],
                             capture_output=True, text=True).stdout
        return out

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM; return (exit code, seconds taken)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, time.monotonic() - start

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            # Only the process group this test started (cotyledon's setsid).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def members(aggregate_id):
    """{compute host: member state} of an aggregate's pool."""
    return {m["host"]: m["state"] for m in db_api.list_members(aggregate_id)}


def recorded(count):
    """Wait until the notification log holds ``count`` rows."""
    return wait_for(
        lambda: sum(db_api.notification_counts().values()) >= count,
        timeout=60, what="%d notifications in the database" % count)


def outcomes():
    result = {}
    for (_, outcome), n in db_api.notification_counts().items():
        result[outcome] = result.get(outcome, 0) + n
    return result


def desired(aggregate_id):
    agg = db_api.get_aggregate(aggregate_id)
    return (agg["name"], sorted(agg["hosts"]), agg["metadata"],
            agg["deleted"])


def dump_tables(url):
    """Every row of every table as text (secrets must not be in it)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    text = []
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text("SELECT * FROM %s" % table)):
                    text.append("%s %r" % (table, tuple(row)))
    finally:
        engine.dispose()
    return "\n".join(text)


def shuffled_with_duplicates(items, seed):
    rng = random.Random(seed)
    doubled = list(items) + rng.sample(list(items), k=len(items) // 2)
    rng.shuffle(doubled)
    return doubled
