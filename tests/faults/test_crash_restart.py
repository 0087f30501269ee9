"""SIGKILL in the middle of a master hand-over or an eject, then a restart.

Beyond test_daemon_crash.py (daemon killed after a pool.join / pool.eject
was sent) and test_engine_pools.py (engine killed mid-join): here the kill
lands while the step is *in flight* in the journal. The test holds a row
lock on the step's journal row (``SELECT ... FOR UPDATE`` in MariaDB), so
the engine's "after" write blocks: xapi has done the hand-over (or the
eject), the journal still says ``started``, and then the process group is
SIGKILLed. The next engine (or daemon) must close the row as
``abandoned``, judge the step's effect by observing xapi, converge, and
never send pool.designate_new_master or pool.eject a second time.
"""

import contextlib
import signal

import pytest
import sqlalchemy as sa

from poolmgr.db import api as db_api
from tests.faults import support
from tests.functional import engine_support as es


@pytest.fixture
def sim(request, mysql_url):
    es.simulator_or_skip()
    simulator = request.getfixturevalue("simulator")

    def make(hosts=3, **kwargs):
        kwargs.setdefault("password", es.PASSWORD)
        return simulator(hosts=hosts, **kwargs)
    return make


@contextlib.contextmanager
def held_row_lock(url, aggregate_id, kind):
    """Wait for ``kind``'s journal row to be started, then lock it."""
    row = es.wait_for(lambda: next(
        (o for o in es.journal(aggregate_id, kind=kind)
         if o["status"] == "started"), None), timeout=60, interval=0.02)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    conn = engine.connect()
    trans = conn.begin()
    try:
        conn.execute(sa.text("SELECT id FROM operations WHERE id = :id "
                             "FOR UPDATE"), {"id": row["id"]})
        yield row
    finally:
        trans.rollback()
        conn.close()
        engine.dispose()


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except Exception:  # noqa: BLE001
        _kill(proc)


def _status(op_id):
    return next(o for o in es.journal(1) if o["id"] == op_id)["status"]


def _form(s, hosts):
    names = es.register(s)
    es.want(1, "pool-1", names[:hosts])
    assert es.engine(es.make_conf()).reconcile_pool(1).converged
    return names


def test_engine_killed_mid_hand_over_designates_exactly_once(sim, mysql_url,
                                                             tmp_path):
    s = sim(3, join_delay=0.3, eject_delay=0.3)
    names = _form(s, 3)
    xs01, xs02 = s.hosts[0]["name_label"], s.hosts[1]["name_label"]
    old_pool = s.pool_uuid(xs01)
    # The master leaves the aggregate: hand over to cmp-2, then eject.
    es.want(1, "pool-1", names[1:])
    # The old master answers slowly, so the test can lock the journal
    # row between "started" and the reply.
    s.set_latency(xs01, 0.5)
    config = es.write_config(tmp_path / "poolmgr.conf", mysql_url)
    victim = es.spawn_engine(config, "victim")
    try:
        with held_row_lock(mysql_url, 1, "designate_master") as row:
            es.wait_for(lambda: s.role(xs02) in ("master", None)
                        and s.calls("pool.designate_new_master"),
                        timeout=30, interval=0.02)
            _kill(victim)
    finally:
        if victim.poll() is None:
            _kill(victim)
    s.set_latency(xs01, 0)
    assert _status(row["id"]) == "started"
    survivor = es.spawn_engine(config, "survivor")
    try:
        es.wait_for(lambda: es.members(1)["cmp-1"]["state"] == "removed"
                    and db_api.get_pool(1)["state"] == "active",
                    timeout=60)
    finally:
        _stop(survivor)
    assert len(s.calls("pool.designate_new_master")) == 1
    assert len(s.calls("pool.eject")) == 1
    assert s.calls("pool.eject")[0].host == xs02
    assert db_api.get_pool(1)["master"] == "cmp-2"
    assert s.role(xs02) == "master" and s.master_of(s.hosts[2]) == xs02
    # NOTE(reboot): an ejected host reboots (eject_delay) before it is a
    # standalone master again; the pool is active as soon as xapi drops it.
    es.wait_for(lambda: s.role(xs01) == "master", timeout=10)
    assert s.pool_uuid(xs01) != old_pool
    ops = [(o["kind"], o["owner"], o["status"]) for o in es.journal(1)
           if o["kind"] in ("designate_master", "eject")]
    assert ops == [("designate_master", "victim", "abandoned"),
                   ("eject", "survivor", "succeeded")]
    assert db_api.unfinished_operations(1) == []


def test_engine_killed_mid_eject_ejects_exactly_once(sim, mysql_url,
                                                      tmp_path):
    s = sim(3, join_delay=0.3, eject_delay=0.5)
    names = _form(s, 3)
    xs01, xs03 = s.hosts[0]["name_label"], s.hosts[2]["name_label"]
    es.want(1, "pool-1", names[:2])
    s.set_latency(xs01, 0.5)    # pool.eject runs on the master
    config = es.write_config(tmp_path / "poolmgr.conf", mysql_url)
    victim = es.spawn_engine(config, "victim")
    try:
        with held_row_lock(mysql_url, 1, "eject") as row:
            es.wait_for(lambda: s.calls("pool.eject")
                        and s.master_of(xs03) == xs03, timeout=30,
                        interval=0.02)
            _kill(victim)
    finally:
        if victim.poll() is None:
            _kill(victim)
    s.set_latency(xs01, 0)
    assert _status(row["id"]) == "started"
    assert es.members(1)["cmp-3"]["state"] == "ejecting"
    survivor = es.spawn_engine(config, "survivor")
    try:
        es.wait_for(lambda: es.members(1)["cmp-3"]["state"] == "removed"
                    and db_api.get_pool(1)["state"] == "active",
                    timeout=60)
    finally:
        _stop(survivor)
    assert len(s.calls("pool.eject")) == 1
    es.wait_for(lambda: s.role(xs03) == "master", timeout=10)
    assert s.pool_uuid(xs03) != s.pool_uuid(xs01)
    ops = [(o["kind"], o["owner"], o["status"]) for o in es.journal(1)
           if o["kind"] == "eject"]
    assert ops == [("eject", "victim", "abandoned")]
    assert db_api.unfinished_operations(1) == []


def test_daemon_killed_mid_hand_over_then_restarted_converges(bed):
    names = bed.hosts(3, join_delay=0.3, eject_delay=0.3)
    bed.daemon()
    nova = bed.nova()
    agg = support.form_pool(nova, "crash-designate", names)
    support.wait_for(lambda: bed.active(agg, names), timeout=60,
                     what="the pool to form")
    xs01 = bed.sim.hosts[0]["name_label"]
    bed.sim.set_latency(xs01, 0.5)
    nova.remove_host(agg, "cmp-1")
    with held_row_lock(bed.mysql_url, agg, "designate_master") as row:
        support.wait_for(lambda: bed.calls("pool.designate_new_master")
                         and bed.sim.role(bed.sim.hosts[1]) in
                         ("master", None), timeout=30, interval=0.02,
                         what="the hand-over in xapi")
        bed.daemons[-1].kill()
    bed.sim.set_latency(xs01, 0)
    bed.daemon()
    support.wait_for(lambda: bed.members(agg).get("cmp-1") == "removed"
                     and bed.active(agg, names[1:]), timeout=90,
                     what="convergence after the restart")
    assert len(bed.calls("pool.designate_new_master")) == 1
    assert len(bed.calls("pool.eject")) == 1
    assert bed.pool(agg)["master"] == "cmp-2"
    statuses = {o["id"]: o["status"] for o in bed.journal(agg)}
    assert statuses[row["id"]] == "abandoned"
    assert "started" not in statuses.values()
    kinds = [o["kind"] for o in bed.journal(agg)]
    assert kinds[-2:] == ["designate_master", "eject"]
