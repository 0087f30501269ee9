"""The journal is fenced like the mutations: a stale engine cannot rewrite.

Real MariaDB, the simulator over real XML-RPC, the engine in-process.
"""

import datetime
import threading

import pytest

from poolmgr.db import api as db_api
from tests.functional import engine_support as es


@pytest.fixture
def sim(mysql_url, simulator):
    def make(hosts=2, **kwargs):
        kwargs.setdefault("password", es.PASSWORD)
        kwargs.setdefault("join_delay", 0.2)
        return simulator(hosts=hosts, **kwargs)
    return make


def _take_over_while_joining(s, joiner):
    """While pool.join is in flight: the lease expires, another takes it
    and closes the in-flight row abandoned (as a claiming engine does)."""
    es.wait_for(lambda: es.calls(s, "pool.join", joiner), timeout=30,
                interval=0.01)
    db_api.update_pool(1, lease_expires_at=datetime.datetime.utcnow()
                       - datetime.timedelta(seconds=1))
    assert db_api.acquire_lease(1, "next-holder", 30) is not None
    for op in db_api.unfinished_operations(1):
        db_api.journal_finish(op["id"], db_api.OP_ABANDONED)


def test_engine_that_lost_its_lease_cannot_mark_its_join_succeeded(sim):
    s = sim(2)
    names = es.register(s)
    es.want(1, "fenced", names)
    # The join is answered 2 s after it arrives: time for the take-over.
    s.set_latency(s.hosts[1]["name_label"], 2.0)
    thief = threading.Thread(target=_take_over_while_joining,
                             args=(s, s.hosts[1]))
    thief.start()
    result = es.engine(es.make_conf(lease_time=30.0), owner="stale"
                       ).reconcile_pool(1)
    thief.join(30)
    assert result.error == "lease lost", (result, es.journal(1), es.members(1))
    joins = es.journal(1, kind="join")
    assert [(o["owner"], o["status"]) for o in joins] == [
        ("stale", "abandoned")]
    assert db_api.get_pool(1)["lease_owner"] == "next-holder"
