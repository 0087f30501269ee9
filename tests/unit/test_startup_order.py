"""The first Nova API sync after start waits for the intake's queue
(poolmgr.startup, NOTE(first-sync) in poolmgr.nova.sync)."""

import multiprocessing
import threading
import time

import pytest
from oslo_utils import timeutils

from poolmgr import bootstrap
from poolmgr.nova import client as nova
from poolmgr.nova import sync as novasync
from poolmgr import startup
from tests.unit import pyrun


class _Client:
    """Answers GET /os-aggregates with nothing; remembers when it was
    asked."""

    def __init__(self):
        self.asked = []

    def list_aggregates(self):
        self.asked.append(time.monotonic())
        return nova.Listing(started_at=timeutils.utcnow(),
                            aggregates=())


def _conf(first_sync_wait=60.0):
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("sync_interval", 300, group="nova")
    conf.set_override("reflect_metadata", False, group="nova")
    conf.set_override("reflect_interval", 0.1, group="nova")
    conf.set_override("first_sync_wait", first_sync_wait, group="nova")
    return conf


@pytest.fixture
def loop(sqlite_url):
    """run(conf, bound) -> (client, started) with the loop in a thread;
    stopped afterwards."""
    stopping = threading.Event()
    threads = []

    def run(conf, bound):
        client = _Client()
        thread = threading.Thread(target=novasync.Loop(
            conf, client=client, intake_bound=bound).run, args=(stopping,))
        started = time.monotonic()
        thread.start()
        threads.append(thread)
        return client, started

    yield run
    stopping.set()
    for thread in threads:
        thread.join(timeout=10)


def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_first_sync_waits_until_the_intake_reports_its_queue_bound(loop):
    bound = startup.IntakeBound()
    client, _ = loop(_conf(), bound)
    time.sleep(0.6)
    assert client.asked == []
    reported = time.monotonic()
    bound.report()
    _until(lambda: client.asked)
    assert client.asked[0] >= reported
    time.sleep(0.5)
    assert len(client.asked) == 1


def test_unbound_queue_syncs_after_the_wait_and_again_once_bound(loop):
    bound = startup.IntakeBound()
    client, started = loop(_conf(first_sync_wait=0.5), bound)
    _until(lambda: client.asked)
    assert client.asked[0] - started >= 0.5
    time.sleep(0.6)
    assert len(client.asked) == 1
    reported = time.monotonic()
    bound.report()
    _until(lambda: len(client.asked) == 2)
    # NOTE(owed): looked for every _OWED_LOOK seconds, not a sync_interval.
    assert client.asked[1] - reported < 1.5
    time.sleep(0.6)
    assert len(client.asked) == 2


def test_a_bound_queue_lets_the_first_sync_run_at_once(loop):
    bound = startup.IntakeBound()
    bound.report()
    client, started = loop(_conf(), bound)
    _until(lambda: client.asked)
    assert client.asked[0] - started < 1.0


def test_without_an_intake_signal_the_loop_syncs_at_once(loop):
    client, started = loop(_conf(), None)
    _until(lambda: client.asked)
    assert client.asked[0] - started < 1.0


def _report_in_a_child(bound):
    bound.report()


def test_the_signal_crosses_from_a_forked_worker_and_starts_unset():
    context = multiprocessing.get_context("fork")
    bound = startup.IntakeBound(context)
    assert not bound.is_set()
    child = context.Process(target=_report_in_a_child, args=(bound,))
    child.start()
    child.join(timeout=30)
    assert bound.wait(5)
    # A daemon started again makes its own, unset whatever the last did.
    assert not startup.IntakeBound(context).is_set()


def test_the_daemons_intake_and_sync_share_one_signal():
    # NOTE(subprocess): a ServiceManager takes over the process's signals.
    code = ("from poolmgr import bootstrap, service, startup; "
            "conf = bootstrap.build_conf(libraries=False); "
            "conf([], project='poolmgr', default_config_files=[]); "
            "sm = service.build_service_manager(conf, nova_configured=True); "
            "args = {c.service.name: c.args for c in sm._services.values()}; "
            "print(isinstance(args['intake'][1], startup.IntakeBound), "
            "args['nova-sync'][1] is args['intake'][1])")
    assert pyrun.stdout_of(code).split() == ["True", "True"]
