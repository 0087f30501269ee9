"""The classic topology end to end (issue 12): every host runs its
nova-compute in a VM. Real MariaDB, the simulator through the real XenAPI
client, the engine in process (and as a process for the SIGKILL tests).
"""

import contextlib
import signal

import pytest
import sqlalchemy as sa

from poolmgr.db import api as db_api
from poolmgr.db import compute_vms
from tests.functional import engine_support as es


@pytest.fixture
def sim(request, mysql_url):
    es.simulator_or_skip()
    simulator = request.getfixturevalue("simulator")

    def make(hosts=3, **kwargs):
        kwargs.setdefault("password", es.PASSWORD)
        kwargs.setdefault("join_delay", 0.2)
        kwargs.setdefault("eject_delay", 0.2)
        kwargs.setdefault("compute_vms", True)
        return simulator(hosts=hosts, **kwargs)
    return make


@pytest.fixture
def conf():
    return es.make_conf()


def register(s):
    names = es.register(s)
    for name, host in zip(names, s.hosts):
        compute_vms.set_compute_vm(name, host["compute_vm_uuid"])
    return names


def vm(s, index):
    return s.vm_state(s.hosts[index]["compute_vm_uuid"])


def runs_on_its_host(s, index):
    state = vm(s, index)
    return (state.get("power_state") == "Running"
            and state.get("resident_on") == s.hosts[index]["name_label"])


def kinds(aggregate_id, host=None):
    return [(o["kind"], o["status"]) for o in es.journal(aggregate_id)
            if host is None or o["host"] == host]


def host_row(name):
    return db_api.get_host(name)


def _pool(s, conf, count=2):
    names = register(s)
    es.want(1, "pool-a", names[:count])
    return names, es.engine(conf).reconcile_pool(1)


# -- join ---------------------------------------------------------------------

def test_join_stops_the_compute_vm_joins_and_starts_it_on_the_member(sim,
                                                                     conf):
    s = sim(2)
    names, result = _pool(s, conf)
    assert result.converged
    assert {h: m["state"] for h, m in es.members(1).items()} == {
        names[0]: "active", names[1]: "active"}
    assert s.role(2) == "slave"
    assert runs_on_its_host(s, 1)
    assert runs_on_its_host(s, 0)
    assert kinds(1, names[1]) == [
        ("compute_vm_clean_shutdown", "succeeded"), ("join", "succeeded"),
        ("compute_vm_start", "succeeded")]
    # the start went through the master, onto the new member
    starts = s.calls("VM.start_on")
    assert [c.host for c in starts] == [s.hosts[0]["name_label"]]
    assert host_row(names[1])["compute_vm_stopped_at"] is None


def test_each_step_is_journaled_with_the_pass_cause(sim, conf):
    s = sim(2)
    names, _ = _pool(s, conf)
    ops = [o for o in es.journal(1) if o["host"] == names[1]]
    assert all(o["cause"] for o in ops)
    assert "nova-compute-xs02" in ops[0]["step"]


def test_downtime_is_stored_on_the_start_row(sim, conf):
    s = sim(2, join_delay=0.5)
    names, _ = _pool(s, conf)
    start = [o for o in es.journal(1, kind="compute_vm_start")][-1]
    assert start["host"] == names[1]
    assert start["downtime_s"] >= 0.5


def test_master_keeps_its_compute_vm_running_throughout(sim, conf):
    s = sim(2)
    _pool(s, conf)
    master_vm = s.hosts[0]["compute_vm_uuid"]
    assert not [c for c in s.calls("VM.clean_shutdown")
                if master_vm in str(c.params)]
    assert runs_on_its_host(s, 0)


def test_another_running_vm_refuses_the_join_and_the_compute_vm_stays_up(
        sim, conf):
    s = sim(2)
    s.create_running_vm(2, "web-1")
    names, result = _pool(s, conf)
    member = es.members(1)[names[1]]
    assert member["state"] == "error"
    assert member["error_code"] == "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"
    assert member["error_params"] == ["web-1"]
    assert s.calls("VM.clean_shutdown") == []
    assert s.calls("pool.join") == []
    assert runs_on_its_host(s, 1)


def test_a_join_xapi_refuses_starts_the_compute_vm_again(sim, conf):
    s = sim(2)
    # Only xapi sees this one: the check poolmgr leaves to xapi (bonds).
    s.add_bond(2)
    names, result = _pool(s, conf)
    member = es.members(1)[names[1]]
    assert member["state"] == "error"
    assert member["error_code"] == "POOL_JOINING_HOST_HAS_BONDS"
    assert runs_on_its_host(s, 1)
    assert kinds(1, names[1]) == [
        ("compute_vm_clean_shutdown", "succeeded"), ("join", "failed"),
        ("compute_vm_start", "succeeded")]
    restart = es.journal(1, kind="compute_vm_start")[-1]
    assert "pool.join failed: POOL_JOINING_HOST_HAS_BONDS" in restart["cause"]
    assert restart["downtime_s"] is not None
    assert host_row(names[1])["compute_vm_stopped_at"] is None


def test_join_xapi_fails_with_software_version_differs_restarts_the_vm(
        sim, conf):
    s = sim(2)
    # What xapi answers when the versions differ in a way poolmgr's
    # preflight did not see (e.g. it changed between the reads and the call).
    s.fail_next(2, "pool.join", code="HOSTS_NOT_HOMOGENEOUS",
                params=["Software version differs"])
    names, _ = _pool(s, conf)
    member = es.members(1)[names[1]]
    assert member["state"] == "error"
    assert member["error_code"] == "HOSTS_NOT_HOMOGENEOUS"
    assert member["error_params"] == ["Software version differs"]
    assert len(s.calls("pool.join")) == 1
    assert runs_on_its_host(s, 1)
    assert kinds(1, names[1])[-1] == ("compute_vm_start", "succeeded")
    assert host_row(names[1])["compute_vm_stopped_at"] is None


def test_software_version_mismatch_preflight_sees_leaves_the_vm_running(
        sim, conf):
    s = sim(2)
    s.set_software_version(2, db_schema="5.900")
    names, _ = _pool(s, conf)
    # preflight sees the schema too: the VM is never shut down for it
    member = es.members(1)[names[1]]
    assert member["error_code"] == \
        "POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA"
    assert runs_on_its_host(s, 1)
    assert s.calls("VM.clean_shutdown") == []


def test_a_start_xapi_refuses_parks_the_member_and_retry_starts_it(sim,
                                                                    conf):
    s = sim(2)
    s.fail_next(1, "VM.start_on", code="HOST_NOT_ENOUGH_FREE_MEMORY",
                params=["4294967296", "1073741824"])
    names, _ = _pool(s, conf)
    member = es.members(1)[names[1]]
    assert member["state"] == "error"
    assert member["error_code"] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    assert vm(s, 1)["power_state"] == "Halted"
    assert len(s.calls("VM.start_on")) == 1
    db_api.retry_pool(1, names[1])
    assert es.engine(conf).reconcile_pool(1).converged
    assert runs_on_its_host(s, 1)
    assert len(s.calls("pool.join")) == 1
    assert host_row(names[1])["compute_vm_stopped_at"] is None


def test_a_guest_ignoring_clean_shutdown_is_hard_shut_down(sim, conf):
    s = sim(2)
    s.set_clean_shutdown_delay(s.hosts[1]["compute_vm_uuid"], 60)
    conf.set_override("compute_vm_shutdown_timeout", 1.0, group="xenserver")
    names, result = _pool(s, conf)
    assert result.converged
    assert kinds(1, names[1]) == [
        ("compute_vm_clean_shutdown", "failed"),
        ("compute_vm_hard_shutdown", "succeeded"), ("join", "succeeded"),
        ("compute_vm_start", "succeeded")]
    assert es.journal(1, kind="compute_vm_clean_shutdown")[0][
        "xapi_error_code"] == "TIMEOUT"
    assert runs_on_its_host(s, 1)


def test_a_compute_vm_the_operator_shut_down_is_not_started(sim, conf):
    s = sim(2)
    names = register(s)
    from tests.simulator.sim_client import login
    session = login(s.hosts[1])
    session.xenapi.VM.clean_shutdown(session.xenapi.VM.get_by_uuid(
        s.hosts[1]["compute_vm_uuid"]))
    es.want(1, "pool-a", names[:2])
    assert es.engine(conf).reconcile_pool(1).converged
    assert s.role(2) == "slave"
    assert vm(s, 1)["power_state"] == "Halted"
    assert s.calls("VM.start_on") == []


def test_independent_compute_hosts_join_without_vm_calls(sim, conf):
    s = sim(2, compute_vms=False)
    names = es.register(s)
    es.want(1, "pool-a", names)
    assert es.engine(conf).reconcile_pool(1).converged
    assert s.calls("VM.clean_shutdown") == [] and \
        s.calls("VM.start_on") == []


def test_pool_plan_shows_the_shutdown_join_start_sequence(sim, conf):
    s = sim(2)
    names = register(s)
    es.want(1, "pool-a", names[:1])
    assert es.engine(conf).reconcile_pool(1).converged
    es.want(1, "pool-a", names[:2])
    plan = es.engine(conf).plan_pool(1)
    assert [c["kind"] for c in plan.calls] == [
        "stop_compute_vm", "join_compute_host", "wait_member",
        "start_compute_vm"]
    assert s.calls("VM.clean_shutdown") == []


# -- eject and hand-over ------------------------------------------------------

def test_eject_of_a_host_with_its_compute_vm_is_refused_by_default(sim,
                                                                   conf):
    s = sim(2)
    names, _ = _pool(s, conf)
    es.want(1, "pool-a", names[:1])
    es.engine(conf).reconcile_pool(1)
    member = es.members(1)[names[1]]
    assert member["state"] == "error"
    assert member["error_code"] == "EJECT_WOULD_DESTROY_COMPUTE_VM"
    assert member["error_params"] == ["nova-compute-xs02",
                                      s.hosts[1]["compute_vm_uuid"]]
    assert "eject_compute_vm = shutdown" in db_api.get_pool(1)["last_error"]
    assert s.calls("pool.eject") == []
    assert runs_on_its_host(s, 1)


def test_pool_plan_shows_the_refused_eject_as_a_failure(sim, conf):
    s = sim(2)
    names, _ = _pool(s, conf)
    es.want(1, "pool-a", names[:1])
    plan = es.engine(conf).plan_pool(1)
    assert [(f["host"], f["code"]) for f in plan.failures] == [
        (names[1], "EJECT_WOULD_DESTROY_COMPUTE_VM")]
    assert "eject_compute_vm = shutdown" in plan.failures[0]["remediation"]
    assert not [c for c in plan.calls if c["mutating"]]


def test_eject_with_shutdown_stops_it_ejects_and_forgets_it(sim, conf):
    s = sim(2)
    conf.set_override("eject_compute_vm", "shutdown", group="xenserver")
    names, _ = _pool(s, conf)
    uuid = s.hosts[1]["compute_vm_uuid"]
    es.want(1, "pool-a", names[:1])
    assert es.engine(conf).reconcile_pool(1).converged
    assert len(s.calls("pool.eject")) == 1
    assert es.members(1)[names[1]]["state"] == "removed"
    assert s.vm_state(uuid) == {}
    assert host_row(names[1])["compute_vm_uuid"] is None
    ejects = [k for k in kinds(1, names[1])
              if k[0] in ("compute_vm_clean_shutdown", "eject",
                          "compute_vm_gone")]
    assert ejects[-3:] == [("compute_vm_clean_shutdown", "succeeded"),
                           ("eject", "succeeded"),
                           ("compute_vm_gone", "succeeded")]


def test_hand_over_of_a_master_with_a_compute_vm_refuses_its_eject(sim,
                                                                   conf):
    s = sim(3)
    names, result = _pool(s, conf, count=3)
    assert result.converged
    es.want(1, "pool-a", names[1:])
    es.engine(conf).reconcile_pool(1)
    assert db_api.get_pool(1)["master"] == names[1]
    assert s.role(2) == "master"
    member = es.members(1)[names[0]]
    assert member["state"] == "error"
    assert member["error_code"] == "EJECT_WOULD_DESTROY_COMPUTE_VM"
    assert s.calls("pool.eject") == []
    assert runs_on_its_host(s, 0)


def test_hand_over_with_shutdown_ejects_the_old_master(sim, conf):
    s = sim(3)
    conf.set_override("eject_compute_vm", "shutdown", group="xenserver")
    names, _ = _pool(s, conf, count=3)
    es.want(1, "pool-a", names[1:])
    assert es.engine(conf).reconcile_pool(1).converged
    assert db_api.get_pool(1)["master"] == names[1]
    assert len(s.calls("pool.eject")) == 1
    assert es.members(1)[names[0]]["state"] == "removed"
    assert host_row(names[0])["compute_vm_uuid"] is None
    assert runs_on_its_host(s, 1) and runs_on_its_host(s, 2)


# -- SIGKILL between the steps ------------------------------------------------

@contextlib.contextmanager
def held_row_lock(url, kind):
    """Wait for ``kind``'s journal row to be started, then lock it so the
    engine's 'after' write blocks (the xapi call itself goes through)."""
    row = es.wait_for(lambda: next(
        (o for o in es.journal(1, kind=kind) if o["status"] == "started"),
        None), timeout=60, interval=0.01)
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
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def _converges_after_restart(s, config, names):
    survivor = es.spawn_engine(config, "survivor")
    try:
        es.wait_for(lambda: runs_on_its_host(s, 1)
                    and es.members(1)[names[1]]["state"] == "active"
                    and host_row(names[1])["compute_vm_stopped_at"] is None,
                    timeout=60)
    finally:
        survivor.terminate()
        try:
            survivor.wait(timeout=30)
        except Exception:  # noqa: BLE001
            _kill(survivor)
    assert len(s.calls("pool.join")) == 1
    assert s.role(2) == "slave"
    assert runs_on_its_host(s, 0)


def _victim(s, mysql_url, tmp_path):
    names = register(s)
    config = es.write_config(tmp_path / "poolmgr.conf", mysql_url)
    es.want(1, "pool-a", names[:2])
    return names, config, es.spawn_engine(config, "victim")


def test_sigkill_after_the_shutdown_converges_with_one_join(sim, mysql_url,
                                                            tmp_path):
    s = sim(2)
    s.set_clean_shutdown_delay(s.hosts[1]["compute_vm_uuid"], 0.5)
    names, config, victim = _victim(s, mysql_url, tmp_path)
    try:
        with held_row_lock(mysql_url, "compute_vm_clean_shutdown"):
            es.wait_for(lambda: vm(s, 1)["power_state"] == "Halted",
                        interval=0.01)
            _kill(victim)
    finally:
        _kill(victim)
    assert s.calls("pool.join") == []
    assert host_row(names[1])["compute_vm_stopped_at"] is not None
    _converges_after_restart(s, config, names)


def test_sigkill_after_the_join_converges_with_one_join(sim, mysql_url,
                                                        tmp_path):
    s = sim(2, join_delay=1.0)
    s.set_latency(2, 0.3)
    names, config, victim = _victim(s, mysql_url, tmp_path)
    try:
        with held_row_lock(mysql_url, "join"):
            es.wait_for(lambda: s.calls("pool.join")
                        and s.role(2) != "master", interval=0.01)
            _kill(victim)
    finally:
        _kill(victim)
    s.set_latency(2, 0)
    assert vm(s, 1)["power_state"] == "Halted"
    assert s.calls("VM.start_on") == []
    _converges_after_restart(s, config, names)


def test_sigkill_before_the_start_converges_with_one_join(sim, mysql_url,
                                                          tmp_path):
    s = sim(2, join_delay=1.0)
    names, config, victim = _victim(s, mysql_url, tmp_path)
    try:
        es.wait_for(lambda: s.calls("pool.join") and s.role(2) != "master",
                    interval=0.01)
        # The new member stays not live: the engine waits for it, and is
        # killed there, before VM.start_on.
        s.set_offline(2)
        es.wait_for(lambda: es.journal(1, kind="join")
                    and es.journal(1, kind="join")[-1]["status"]
                    == "succeeded", interval=0.02)
        _kill(victim)
    finally:
        _kill(victim)
    assert s.calls("VM.start_on") == []
    s.set_offline(2, False)
    _converges_after_restart(s, config, names)


# -- what operators see -------------------------------------------------------

def test_pool_history_shows_the_downtime_of_each_join(sim, conf, mysql_url,
                                                      tmp_path):
    import json
    import os
    import subprocess
    import sys
    s = sim(3)
    names, _ = _pool(s, conf, count=3)
    config = es.write_config(tmp_path / "poolmgr.conf", mysql_url)
    manage = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")
    result = subprocess.run([manage, "--config-file", str(config), "pool",
                             "history", "1", "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    starts = [o for o in json.loads(result.stdout)
              if o["kind"] == "compute_vm_start"]
    assert sorted(o["host"] for o in starts) == names[1:]
    assert all(o["downtime_s"] > 0 for o in starts)
    table = subprocess.run([manage, "--config-file", str(config), "pool",
                            "history", "1"], capture_output=True, text=True,
                           timeout=120).stdout
    assert "downtime" in table.splitlines()[0]
    assert "%.1f s" % starts[0]["downtime_s"] in table
