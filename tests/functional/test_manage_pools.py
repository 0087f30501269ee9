"""poolmgr-manage pool/host/events/status through the installed entry point,
against a real MariaDB and the simulator over XML-RPC."""

import json
import os
import subprocess
import sys

import pytest
import XenAPI

from poolmgr.db import api as db_api
from poolmgr import events

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")
PASSWORD = "manage-secret"


@pytest.fixture
def env(tmp_path, mysql_url, simulator):
    sim = simulator(hosts=3, password=PASSWORD, join_delay=0.2,
                    eject_delay=0.2)
    for i, host in enumerate(sim.hosts, 1):
        db_api.register_host("cmp%d" % i, host["url"])
    conf = tmp_path / "poolmgr.conf"
    conf.write_text(
        "[database]\nconnection = %s\n"
        "[xenserver]\nconnection_password = %s\ncall_timeout = 5\n"
        "join_timeout = 20\neject_timeout = 20\n"
        "[reconciler]\nretry_initial_backoff = 0.05\nretry_max_backoff = 0.2\n"
        "max_attempts = 2\nlease_time = 10\n" % (mysql_url, PASSWORD))
    return sim, str(conf)


def manage(conf, *args, timeout=120):
    return subprocess.run([BIN, "--config-file", conf] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def want(hosts, name="pool-a", aggregate_id=1):
    db_api.put_aggregate(aggregate_id, name, hosts,
                         {events.POOL_FLAG: "true"},
                         uuid="0b5c37a5-0000-4000-8000-00000000000%d"
                         % aggregate_id)


def _state(sim):
    """Everything xapi would tell a client about every host, by uuid."""
    seen = {}
    for host in sim.hosts:
        session = XenAPI.Session(host["url"])
        try:
            session.xenapi.login_with_password("root", PASSWORD)
        except XenAPI.Failure as exc:
            seen[host["uuid"]] = exc.details
            continue
        seen[host["uuid"]] = {
            cls: getattr(session.xenapi, cls).get_all_records()
            for cls in ("pool", "host", "SR", "PBD", "VM")}
        session.xenapi.session.logout()
    return seen


def test_pool_sync_wait_converges_and_show_prints_the_contract(env):
    sim, conf = env
    want(["cmp1", "cmp2"])
    result = manage(conf, "pool", "sync", "pool-a", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[succeeded] join cmp2" in result.stdout
    shown = json.loads(manage(conf, "pool", "show", "pool-a", "--format",
                              "json").stdout)
    for key in ("aggregate_id", "name", "state", "master", "pool_uuid",
                "members", "live_migration_ready", "reasons"):
        assert key in shown
    assert shown["aggregate_id"] == 1
    assert shown["state"] == "active"
    assert shown["master"] == "cmp1"
    assert shown["pool_uuid"] == sim.pool_uuid("xs01")
    assert {m["host"]: (m["state"], m["xenserver_uuid"])
            for m in shown["members"]} == {
        "cmp1": ("active", sim.hosts[0]["uuid"]),
        "cmp2": ("active", sim.hosts[1]["uuid"])}
    # no shared SR yet: not ready, and it says why
    assert shown["live_migration_ready"] is False
    assert any("shared" in r for r in shown["reasons"])
    listed = json.loads(manage(conf, "pool", "list", "--format",
                               "json").stdout)
    assert [p["aggregate_id"] for p in listed] == [1]
    by_id = manage(conf, "pool", "show", "1", "--format", "json")
    by_uuid = manage(conf, "pool", "show",
                     "0b5c37a5-0000-4000-8000-000000000001", "--format",
                     "json")
    assert json.loads(by_id.stdout)["name"] == "pool-a"
    assert json.loads(by_uuid.stdout)["name"] == "pool-a"
    table = manage(conf, "pool", "show", "pool-a").stdout
    assert "state: active" in table and "NOT ready" in table


def test_pool_history_lists_the_journal_newest_first(env):
    sim, conf = env
    want(["cmp1", "cmp2"])
    assert manage(conf, "pool", "sync", "pool-a", "--wait").returncode == 0
    history = json.loads(manage(conf, "pool", "history", "pool-a",
                                "--format", "json").stdout)
    kinds = [op["kind"] for op in history]
    assert kinds[0] == "join" and "set_name_label" in kinds
    assert [op["id"] for op in history] == sorted(
        (op["id"] for op in history), reverse=True)
    assert all(op["status"] == "succeeded" for op in history)
    assert all(op["cause"] for op in history)


def test_pool_plan_reports_all_failures_and_changes_nothing(env):
    sim, conf = env
    sim.create_running_vm("xs03", "web-1")
    sim.set_cpu_vendor("xs03", "AuthenticAMD")
    want(["cmp1", "cmp2", "cmp3"])
    before = _state(sim)
    calls_before = len(sim.call_log)
    result = manage(conf, "pool", "plan", "pool-a", "--format", "json")
    assert result.returncode == 1, result.stderr
    plan = json.loads(result.stdout)
    codes = {(f["host"], f["code"]) for f in plan["failures"]}
    assert ("cmp3", "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS") in codes
    assert ("cmp3", "HOSTS_NOT_HOMOGENEOUS") in codes
    assert all(f.get("remediation") for f in plan["failures"])
    kinds = [c["kind"] for c in plan["calls"]]
    assert kinds[:2] == ["set_name_label", "join"]
    assert [c["host"] for c in plan["calls"] if c["kind"] == "join"] == [
        "cmp2"]
    assert _state(sim) == before
    mutating = {"pool.join", "pool.join_force", "pool.eject",
                "pool.set_name_label", "pool.designate_new_master",
                "PBD.plug", "PBD.create"}
    assert not [c for c in sim.call_log[calls_before:]
                if c.method in mutating]
    text = manage(conf, "pool", "plan", "pool-a").stdout
    assert "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS" in text
    assert "fix:" in text


def test_pool_sync_wait_exits_1_and_retry_clears_the_error(env):
    sim, conf = env
    sim.create_running_vm("xs02", "db-1")
    want(["cmp1", "cmp2"])
    result = manage(conf, "pool", "sync", "pool-a", "--wait")
    assert result.returncode == 1
    shown = json.loads(manage(conf, "pool", "show", "pool-a", "--format",
                              "json").stdout)
    member = {m["host"]: m for m in shown["members"]}["cmp2"]
    assert member["state"] == "error"
    assert "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS" in member["error_code"]
    status = json.loads(manage(conf, "status", "--format", "json").stdout)
    assert any(e["host"] == "cmp2" for e in status["errors"])
    # the operator shuts the VM down, then retries
    session = XenAPI.Session(sim.hosts[1]["url"])
    session.xenapi.login_with_password("root", PASSWORD)
    vm = session.xenapi.VM.get_by_name_label("db-1")[0]
    session.xenapi.VM.clean_shutdown(vm)
    retry = manage(conf, "pool", "retry", "pool-a", "cmp2")
    assert retry.returncode == 0
    assert "1 member error(s) cleared" in retry.stdout
    again = manage(conf, "pool", "sync", "pool-a", "--wait")
    assert again.returncode == 0, again.stdout + again.stderr


def test_host_check_reports_version_pool_and_bad_credentials(env, tmp_path):
    sim, conf = env
    sim.create_running_vm("xs01", "app-1")
    result = manage(conf, "host", "check", "cmp1", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["credentials_ok"]
    assert report["host_uuid"] == sim.hosts[0]["uuid"]
    assert report["role"] == "master"
    assert report["running_vms"] == ["app-1"]
    assert report["api_version"] == "2.21"
    bad = tmp_path / "bad.conf"
    bad.write_text(open(conf).read().replace(PASSWORD, "wrong-password"))
    failed = manage(str(bad), "host", "check", "cmp1", "--format", "json")
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["error_code"] == "SESSION_AUTHENTICATION_FAILED"
    assert "wrong-password" not in failed.stdout + failed.stderr


def test_events_list_and_status_show_the_notification_log(env):
    sim, conf = env
    db_api.record_rejected("bad-1", "aggregate.add_host.end",
                           "nova-api:x", "payload is not a dict")
    listed = json.loads(manage(conf, "events", "list", "--format",
                               "json").stdout)
    assert listed[0]["message_id"] == "bad-1"
    assert listed[0]["outcome"] == "rejected"
    only = json.loads(manage(conf, "events", "list", "--outcome", "applied",
                             "--format", "json").stdout)
    assert only == []
    status = json.loads(manage(conf, "status", "--format", "json").stdout)
    assert status["notifications_by_outcome"] == {"rejected": 1}
    assert "last notification" in manage(conf, "status").stdout


def test_unknown_aggregate_is_one_line_exit_1(env):
    sim, conf = env
    for args in (("pool", "show", "nope"), ("pool", "plan", "nope"),
                 ("pool", "sync", "nope"), ("pool", "retry", "nope"),
                 ("pool", "history", "nope")):
        result = manage(conf, *args)
        assert result.returncode == 1, args
        assert result.stderr.strip() == \
            "poolmgr-manage: aggregate nope not found"
