"""Fixtures for the daemon's functional tests (real RabbitMQ and MariaDB)."""

import os
import subprocess
import sys

import pytest

from tests.functional import daemon_support as support
# The real Nova 34 control plane (tests/realnova): real_nova, nova.
from tests.realnova.fixture import nova  # noqa: F401
from tests.realnova.fixture import real_nova  # noqa: F401


@pytest.fixture
def sim(mysql_url, simulator):
    """The simulator factory (tests/conftest.py: the engine's password,
    0.2 s join and eject) with db.api on a fresh MySQL database."""
    return simulator


@pytest.fixture
def manage(tmp_path, mysql_url):
    """run(*args) -> poolmgr-manage's CompletedProcess on this test's DB."""
    from tests.functional import engine_support as es
    config = es.write_config(tmp_path / "poolmgr.conf", mysql_url)
    binary = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")

    def run(*args):
        return subprocess.run([binary, "--config-file", str(config)]
                              + list(args), capture_output=True, text=True,
                              timeout=120)
    return run


@pytest.fixture
def bus(rabbit_url):
    """This test's own exchange, topics and queue; deleted afterwards."""
    bus = support.Bus(rabbit_url)
    yield bus
    bus.cleanup()


@pytest.fixture
def daemon_factory(tmp_path, bus, mysql_url):
    """Factory: make(**kwargs) -> a support.Daemon, killed afterwards."""
    started = []

    def make(**kwargs):
        daemon = support.Daemon(tmp_path, bus, mysql_url, **kwargs)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.kill()
