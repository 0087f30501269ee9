"""The fault bench: the daemon, RabbitMQ, MariaDB and the simulator.

Every test gets its own exchange, topics, queue, database and simulated
hosts. Helpers that stop RabbitMQ or MariaDB always bring them back, even
when the test fails, because CI runs on this machine's services.
"""

import contextlib
import socket
import subprocess
import time

from poolmgr.db import api as db_api
from tests.conftest import service_unavailable
from tests.functional import daemon_support as ds

RECONCILER = ("[reconciler]\npoll_interval = 0.2\nlease_time = 3\n"
              "retry_initial_backoff = 0.1\nretry_max_backoff = 1\n"
              "max_attempts = 5\nresync_interval = 60\nthreads = 8\n")


def wait_for(predicate, timeout=60.0, interval=0.1, what="condition"):
    return ds.wait_for(predicate, timeout=timeout, interval=interval,
                       what=what)


class Bed:
    """One test's world: bus names, database, simulator, daemons."""

    def __init__(self, tmp_path, rabbit_url, mysql_url, simulator):
        self.tmp_path = tmp_path
        self.bus = ds.Bus(rabbit_url)
        self.mysql_url = mysql_url
        self._simulator = simulator
        self.sim = None
        self.daemons = []

    def hosts(self, count, **kwargs):
        kwargs.setdefault("password", ds.XAPI_SECRET)
        kwargs.setdefault("join_delay", 0.2)
        kwargs.setdefault("eject_delay", 0.2)
        self.sim = self._simulator(hosts=count, **kwargs)
        names = []
        for i, host in enumerate(self.sim.hosts, 1):
            name = "cmp-%d" % i
            db_api.register_host(name, host["url"])
            names.append(name)
        return names

    def daemon(self, extra="", debug=True, requeue_delay=0.3, start=True):
        daemon = ds.Daemon(self.tmp_path, self.bus, self.mysql_url,
                           debug=debug, requeue_delay=requeue_delay,
                           extra=RECONCILER + extra)
        self.daemons.append(daemon)
        if start:
            daemon.start()
        return daemon

    def nova(self, **kwargs):
        return self.bus.nova(**kwargs)

    def calls(self, method, host_index=None):
        host = None
        if host_index is not None:
            host = self.sim.hosts[host_index]["name_label"]
        return self.sim.calls(method=method, host=host)

    def pool(self, aggregate_id):
        return db_api.get_pool(aggregate_id) or {}

    def members(self, aggregate_id):
        return {m["host"]: m["state"]
                for m in db_api.list_members(aggregate_id)}

    def journal(self, aggregate_id=None, kind=None):
        return list(reversed(db_api.list_operations(
            aggregate_id, limit=10000, kind=kind)))

    def active(self, aggregate_id, hosts):
        members = self.members(aggregate_id)
        return (self.pool(aggregate_id).get("state") == "active"
                and all(members.get(h) == "active" for h in hosts))

    def cleanup(self):
        for daemon in self.daemons:
            daemon.kill()
        self.bus.cleanup()


def form_pool(nova, name, hosts, flag=True):
    agg = nova.create_aggregate(name)
    if flag:
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
    for host in hosts:
        nova.add_host(agg, host)
    return agg


# ---------------------------------------------------------------------------
# Service restarts (always restored)
# ---------------------------------------------------------------------------

def _port_open(port, host="127.0.0.1"):
    with contextlib.suppress(OSError):
        with socket.create_connection((host, port), timeout=1):
            return True
    return False


def rabbitmqctl(*args, timeout=120):
    return subprocess.run(["rabbitmqctl"] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def rabbit_stop():
    result = rabbitmqctl("stop_app")
    if result.returncode != 0:
        service_unavailable("rabbitmqctl stop_app (to stop RabbitMQ)",
                            result.stderr[-300:].strip())


def rabbit_start():
    rabbitmqctl("start_app")
    wait_for(lambda: _port_open(5672), timeout=120, what="RabbitMQ back")
    rabbitmqctl("await_startup", timeout=120)


@contextlib.contextmanager
def rabbit_restored():
    """Whatever happens inside, RabbitMQ is running afterwards."""
    try:
        yield
    finally:
        if not _port_open(5672):
            rabbit_start()


def mariadb_stop():
    result = subprocess.run(["mysqladmin", "-uroot", "-h127.0.0.1",
                             "shutdown"], capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        service_unavailable("mysqladmin shutdown (to stop MariaDB)",
                            result.stderr[-300:].strip())
    wait_for(lambda: not _port_open(3306), timeout=60,
             what="MariaDB to stop")
    # NOTE(exit): the port closes before mariadbd has flushed and exited; a
    # start meanwhile finds it "already running" and does nothing (CI on a
    # busy machine waited 120 s for a server that was not coming back).
    wait_for(lambda: not _mariadbd_running(), timeout=120,
             what="mariadbd to exit")


def _mariadbd_running():
    return subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True,
                          timeout=30).returncode == 0


def mariadb_start():
    subprocess.run(["mkdir", "-p", "/run/mysqld"], check=False)
    subprocess.run(["chown", "mysql:mysql", "/run/mysqld"], check=False)

    def started():
        if _port_open(3306):
            return True
        if not _mariadbd_running():
            # Not started yet, or an earlier one was still exiting when
            # start-stop-daemon looked: (again) now.
            subprocess.run(["start-stop-daemon", "--start", "--oknodo",
                            "--background", "--chuid", "mysql", "--exec",
                            "/usr/sbin/mariadbd"], check=False, timeout=60)
        return False
    wait_for(started, timeout=120, interval=0.5, what="MariaDB back")
    # The port opens a moment before queries are served.
    wait_for(_mariadb_answers, timeout=60, what="MariaDB to answer")


def _mariadb_answers():
    result = subprocess.run(["mysqladmin", "-uroot", "-h127.0.0.1", "ping"],
                            capture_output=True, timeout=30)
    return result.returncode == 0


@contextlib.contextmanager
def mariadb_restored():
    try:
        yield
    finally:
        if not _port_open(3306):
            mariadb_start()


def settle(seconds):
    time.sleep(seconds)
