"""What the benchmarks share: the machine, scratch databases and queues.

Benchmarks measure; they do not assert. Each ``bench_*.py`` module has
``run(results, scale=1.0)`` and adds its figures with ``results.add``.
"""

import contextlib
import datetime
import os
import platform
import socket
import sys
import time
import urllib.parse
import uuid

MYSQL_URL = os.environ.get("POOLMGR_TEST_MYSQL_URL",
                           "mysql+pymysql://root@127.0.0.1:3306/")
RABBIT_URL = os.environ.get("POOLMGR_TEST_RABBIT_URL",
                            "rabbit://guest:guest@127.0.0.1:5672/")


class Results(dict):
    """name -> figure (a dict: value, unit, goal, ok, details)."""

    def add(self, name, value, unit="", goal=None, details=None):
        """Record a figure; ``goal`` is ("<=" | ">=" | "<" | ">" | "==",
        number)."""
        ok = None
        if goal is not None and value is not None:
            op, bound = goal
            ok = {"<=": value <= bound, ">=": value >= bound,
                  "<": value < bound, ">": value > bound,
                  "==": value == bound}[op]
        self[name] = {"value": value, "unit": unit,
                      "goal": "%s %s" % goal if goal else "",
                      "ok": ok, "details": details or {}}
        return self[name]


def deep_size(obj, seen):
    """Bytes ``obj`` holds (sys.getsizeof over dicts, lists, tuples and
    sets, recursively), each object counted once across calls sharing
    ``seen``: interned keys and strings are counted where first met."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        for key, value in obj.items():
            size += deep_size(key, seen) + deep_size(value, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            size += deep_size(item, seen)
    return size


def machine():
    """CPU model, cores, RAM, Python, date: where the figures came from."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    ram_gb = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                    break
    versions = {}
    for name in ("oslo.messaging", "SQLAlchemy", "PyMySQL", "kombu",
                 "XenAPI"):
        with contextlib.suppress(Exception):
            from importlib import metadata
            versions[name] = metadata.version(name)
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": ram_gb,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "hostname": socket.gethostname(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "mysql": _mysql_version(), "rabbitmq": _rabbit_version(),
            "packages": versions}


def _mysql_version():
    with contextlib.suppress(Exception):
        import sqlalchemy as sa
        engine = sa.create_engine(MYSQL_URL, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT VERSION()")).scalar()
    return None


def _rabbit_version():
    with contextlib.suppress(Exception):
        import kombu
        with kombu.Connection(amqp_url()) as conn:
            conn.connect()
            props = conn.connection.server_properties
            return props.get("version")
    return None


def amqp_url(url=RABBIT_URL):
    return url.replace("rabbit://", "amqp://", 1)


@contextlib.contextmanager
def scratch_database():
    """A fresh MySQL database with the schema; db.api points at it."""
    import sqlalchemy as sa

    from poolmgr.db import api as db_api
    from poolmgr.db import migration

    name = "poolmgr_bench_%s" % uuid.uuid4().hex[:10]
    server = sa.create_engine(MYSQL_URL, poolclass=sa.pool.NullPool)
    with server.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE %s CHARACTER SET utf8mb4"
                             % name))
    url = MYSQL_URL.rstrip("/") + "/" + name
    try:
        db_api.configure_url(url)
        migration.upgrade()
        yield url
    finally:
        db_api.dispose()
        with server.connect() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS %s" % name))
        server.dispose()


class Names:
    """One benchmark's exchange, topics and queues (never shared)."""

    def __init__(self, prefix="pmbench"):
        token = uuid.uuid4().hex[:10]
        self.exchange = "%s_%s" % (prefix, token)
        self.versioned_topic = "%s_%s_versioned_notifications" % (prefix,
                                                                  token)
        self.legacy_topic = "%s_%s_notifications" % (prefix, token)
        self.pool = "%s_%s_poolmgr" % (prefix, token)
        self.token = token

    @property
    def topics(self):
        return [self.versioned_topic, self.legacy_topic]

    def cleanup(self, extra_queues=()):
        import kombu
        queues = [self.pool] + list(extra_queues) + [
            "%s.info" % t for t in self.topics]
        with kombu.Connection(amqp_url()) as conn:
            # NOTE(channel): a failed delete closes its channel; use one
            # channel per object so one failure does not skip the rest.
            for queue in queues:
                with contextlib.suppress(Exception):
                    with conn.channel() as channel:
                        channel.queue_delete(queue)
            with contextlib.suppress(Exception):
                with conn.channel() as channel:
                    channel.exchange_delete(self.exchange)


def queue_depth(name):
    import kombu
    with kombu.Connection(amqp_url()) as conn:
        _, count, _ = conn.default_channel.queue_declare(name, passive=True)
        return count


def wait_for(predicate, timeout=60.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s"
                               % (timeout, what))
        time.sleep(interval)


def rabbit_host_port():
    parsed = urllib.parse.urlparse(amqp_url())
    return parsed.hostname or "127.0.0.1", parsed.port or 5672
