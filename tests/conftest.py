"""Shared fixtures: real MariaDB/MySQL, real RabbitMQ, the xapi simulator.

A test that needs a server it cannot reach is skipped with the reason, or
fails when POOLMGR_REQUIRE_SERVICES=1 (CI), so a broken CI machine can never
pass by skipping.
"""

import os
import socket
import sys
import urllib.parse
import uuid

import pytest
import sqlalchemy as sa

from poolmgr.db import api as db_api
from poolmgr.db import migration
from poolmgr.xenapi import records

MYSQL_URL = os.environ.get("POOLMGR_TEST_MYSQL_URL",
                           "mysql+pymysql://root@127.0.0.1:3306/")
RABBIT_URL = os.environ.get("POOLMGR_TEST_RABBIT_URL",
                            "rabbit://guest:guest@127.0.0.1:5672/")


class StrictRecord(dict):
    """A kept xapi record that refuses to read a field poolmgr does not
    keep (records.FIELDS): such a read would see the field as absent in
    the product, so a check built on it would pass without looking."""

    __slots__ = ("xapi_class",)

    def __init__(self, xapi_class, kept):
        super().__init__(kept)
        self.xapi_class = xapi_class

    def _check(self, key):
        if key not in records.FIELDS[self.xapi_class]:
            raise AssertionError(
                "%s field %r is read but not kept: add it to "
                "poolmgr.xenapi.records.FIELDS" % (self.xapi_class, key))

    def __getitem__(self, key):
        self._check(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self._check(key)
        return super().__contains__(key)

    def get(self, key, default=None):
        self._check(key)
        return super().get(key, default)


# Characters of daemon logs a failing report carries: the tail of each log,
# this budget shared among the daemons, none given fewer than LOG_MIN.
LOG_BUDGET, LOG_MIN = 48000, 4000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the log of each daemon it ran
    (tests/functional/daemon_support.Daemon, the faults' too), whether it
    failed in its set-up, its call or its teardown: a flaky failure in CI
    is diagnosable from the CI output alone."""
    outcome = yield
    report = outcome.get_result()
    # NOTE(lazy): a session that never imported daemon_support started no
    # daemon; the unit tests do not import oslo.messaging for this.
    support = sys.modules.get("tests.functional.daemon_support")
    if support is None:
        return
    daemons = support.Daemon.started
    if report.failed and daemons and not item.stash.get(_LOGS_SHOWN, False):
        item.stash[_LOGS_SHOWN] = True
        tail = max(LOG_MIN, LOG_BUDGET // len(daemons))
        for i, daemon in enumerate(daemons, 1):
            text = daemon.log_text()
            report.sections.append((
                "daemon %d log (%s, last %d chars)" % (
                    i, daemon.log.name, min(len(text), tail)),
                text[-tail:]))
    if call.when == "teardown":
        daemons.clear()


_LOGS_SHOWN = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def strict_records(monkeypatch):
    """Every record poolmgr keeps, in every test, is a StrictRecord."""
    monkeypatch.setattr(records, "STRICT", StrictRecord)


def services_required():
    return os.environ.get("POOLMGR_REQUIRE_SERVICES") == "1"


def service_unavailable(what, error):
    message = "%s is not reachable (%s)" % (what, error)
    if services_required():
        pytest.fail(message + "; POOLMGR_REQUIRE_SERVICES=1 forbids skipping",
                    pytrace=False)
    pytest.skip(message + "; set POOLMGR_TEST_* to point at one")


def _tcp_check(url, default_port):
    parsed = urllib.parse.urlparse(url)
    with socket.create_connection((parsed.hostname or "127.0.0.1",
                                   parsed.port or default_port), timeout=3):
        pass


@pytest.fixture(scope="session")
def mysql_server():
    """An engine on the MySQL server (no database selected)."""
    try:
        _tcp_check(MYSQL_URL, 3306)
        engine = sa.create_engine(MYSQL_URL, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        service_unavailable("MySQL at %s" % MYSQL_URL, exc)
    yield engine
    engine.dispose()


@pytest.fixture
def mysql_empty_url(mysql_server):
    """URL of a brand-new empty MySQL database, dropped afterwards."""
    name = "poolmgr_test_%s" % uuid.uuid4().hex[:12]
    with mysql_server.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE %s CHARACTER SET utf8mb4"
                             % name))
    yield MYSQL_URL.rstrip("/") + "/" + name
    db_api.dispose()
    with mysql_server.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS %s" % name))


@pytest.fixture
def mysql_url(mysql_empty_url):
    """A fresh MySQL database with the schema at head; db.api points at it."""
    db_api.configure_url(mysql_empty_url)
    migration.upgrade()
    return mysql_empty_url


@pytest.fixture
def sqlite_url(tmp_path):
    """A SQLite database with the schema, for fast tests of pure DB logic."""
    url = "sqlite:///%s" % (tmp_path / "poolmgr.db")
    db_api.configure_url(url)
    migration.upgrade()
    yield url
    db_api.dispose()


@pytest.fixture(scope="session")
def rabbit_url():
    """A reachable RabbitMQ transport URL."""
    try:
        _tcp_check(RABBIT_URL.replace("rabbit://", "amqp://"), 5672)
        import kombu
        amqp = RABBIT_URL.replace("rabbit://", "amqp://", 1)
        with kombu.Connection(amqp, connect_timeout=5) as conn:
            conn.connect()
    except Exception as exc:  # noqa: BLE001
        service_unavailable("RabbitMQ at %s" % RABBIT_URL.split("@")[-1], exc)
    return RABBIT_URL


@pytest.fixture
def simulator(monkeypatch, tmp_path):
    """Factory: simulator(hosts=3, **kwargs) -> a started Simulator.

    POOLMGR_TEST_SIM_TLS=1 runs the suite over TLS: a simulator not asked
    for ``tls`` explicitly serves HTTPS (``--tls``); engine_support.register
    pins each host's certificate, and the others are trusted through
    SSL_CERT_FILE (a bundle of those simulators' certificates).
    """
    from poolmgr.simulator import Simulator
    started = []
    bundle = tmp_path / "sim-ca-bundle.pem"

    def make(hosts=3, **kwargs):
        by_env = "tls" not in kwargs and \
            os.environ.get("POOLMGR_TEST_SIM_TLS") == "1"
        kwargs.setdefault("tls", by_env)
        kwargs.setdefault("port", 0)
        kwargs.setdefault("address_base", 10 + (len(started) * 37) % 180)
        kwargs.setdefault("username", "root")
        kwargs.setdefault("password", "sim-secret")
        kwargs.setdefault("join_delay", 0.2)
        kwargs.setdefault("eject_delay", 0.2)
        sim = Simulator(hosts=hosts, **kwargs)
        sim.start()
        started.append(sim)
        if by_env:
            with bundle.open("a") as f:
                for host in sim.hosts:
                    f.write(sim.certificate(host["name_label"]).pem)
            monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        return sim

    yield make
    for sim in started:
        sim.stop()
