"""Set-up shared by the engine's functional tests (MariaDB + simulator)."""

import contextlib
import subprocess
import sys
import time

import sqlalchemy as sa

from poolmgr import bootstrap
from poolmgr.db import api as db_api
from poolmgr.db import session as db_session
from poolmgr import engine as pool_engine
from tests.conftest import service_unavailable

PASSWORD = "sim-secret"


def simulator_or_skip():
    try:
        from poolmgr.simulator import Simulator  # noqa: F401
    except ImportError as exc:
        service_unavailable("poolmgr.simulator", exc)


def sim_factory(request, **defaults):
    """The conftest ``simulator`` factory with this module's defaults (a
    module's ``sim`` fixture returns it): sim(hosts=3, **overrides)."""
    simulator_or_skip()
    simulator = request.getfixturevalue("simulator")

    def make(hosts=3, **kwargs):
        for key, value in defaults.items():
            kwargs.setdefault(key, value)
        return simulator(hosts=hosts, **kwargs)
    return make


def make_conf(**reconciler_opts):
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("connection_username", "root", group="xenserver")
    conf.set_override("connection_password", PASSWORD, group="xenserver")
    conf.set_override("call_timeout", 5.0, group="xenserver")
    conf.set_override("join_timeout", 20.0, group="xenserver")
    conf.set_override("eject_timeout", 20.0, group="xenserver")
    defaults = {"lease_time": 5.0, "poll_interval": 0.1,
                "retry_initial_backoff": 0.05, "retry_max_backoff": 0.5,
                "max_attempts": 3, "resync_interval": 60.0, "threads": 4}
    defaults.update(reconciler_opts)
    for key, value in defaults.items():
        conf.set_override(key, value, group="reconciler")
    return conf


def register(sim, prefix="cmp"):
    """Register every simulated host as compute host cmp-1, cmp-2, ..."""
    names = []
    for i, host in enumerate(sim.hosts, 1):
        name = "%s-%d" % (prefix, i)
        db_api.register_host(name, host["url"])
        if host.get("sha256_fingerprint"):
            db_api.set_host_fingerprint(name, host["sha256_fingerprint"])
        names.append(name)
    return names


def want(aggregate_id, name, hosts, flagged=True, deleted=False):
    metadata = {"hypervisor_pool": "true"} if flagged else {}
    time.sleep(0.002)  # NOTE(order): put_aggregate orders by timestamp
    db_api.put_aggregate(aggregate_id, name, hosts, metadata, deleted=deleted)


def members(aggregate_id):
    return {m["host"]: m for m in db_api.list_members(aggregate_id)}


def journal(aggregate_id, kind=None):
    return list(reversed(db_api.list_operations(aggregate_id, limit=1000,
                                                kind=kind)))


def calls(sim, method, host=None):
    """Client calls of ``method`` received by the simulator (optionally on
    one host, given as a sim.hosts entry)."""
    kwargs = {"method": method}
    if host is not None:
        kwargs["host"] = host["name_label"]
    return list(sim.calls(**kwargs))


def engine(conf, owner=None):
    return pool_engine.Engine(conf, owner=owner)


def write_config(path, mysql_url, **reconciler_opts):
    opts = {"lease_time": 2.0, "poll_interval": 0.1,
            "retry_initial_backoff": 0.05, "retry_max_backoff": 0.5,
            "max_attempts": 3, "resync_interval": 60.0}
    opts.update(reconciler_opts)
    lines = ["[database]", "connection = %s" % mysql_url, "",
             "[xenserver]", "connection_username = root",
             "connection_password = %s" % PASSWORD, "call_timeout = 5",
             "join_timeout = 20", "eject_timeout = 20", "", "[reconciler]"]
    lines += ["%s = %s" % kv for kv in opts.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def spawn_engine(config_file, owner):
    return subprocess.Popen(
        [sys.executable, "-m", "poolmgr.cmd.engine", "--config-file",
         str(config_file), "--owner", owner],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(predicate, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %.0f s" % timeout)


@contextlib.contextmanager
def statements():
    """[(SQL text, parameters)] the engine's database got in the block."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((" ".join(statement.split()), parameters))

    engine = db_session.get_engine()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def one_pass(engine, aggregate_id):
    """(PassResult, statements) of one leased pass (the lease acquired
    before the statements are counted)."""
    generation, refused = engine.scheduler.acquire_waiting(aggregate_id)
    assert refused is None, refused
    with statements() as seen:
        result = engine.scheduler.leased_pass(aggregate_id, generation, None)
    return result, seen


def until_settled(engine, aggregate_id, passes=20):
    """Pass after pass until nothing is pending (or ``passes`` run out)."""
    for _ in range(passes):
        result = engine.reconcile_pool(aggregate_id)
        if result.pending is None:
            return result
    return result
