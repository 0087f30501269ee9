"""Host drain and rolling reboot through the daemon (issue 26).

``poolmgr`` runs as a subprocess (its engine under the pool's lease), the
operator's ``poolmgr-manage host drain|undrain`` and ``pool rolling-reboot``
record the request; the simulator is driven over the real XenAPI client.
"""

import os
import signal
import subprocess
import sys

import pytest

from poolmgr.db import api as db_api
from tests.functional import daemon_support as support
from tests.functional import engine_support as es

ENGINE = """
[reconciler]
poll_interval = 0.1
wait_poll_interval = 0.2
retry_initial_backoff = 0.1
retry_max_backoff = 0.5
lease_time = 5
[xenserver]
reboot_timeout = %s
join_timeout = 20
eject_timeout = 20
"""


@pytest.fixture
def sim(request, mysql_url):
    return es.sim_factory(request, password=support.XAPI_SECRET,
                          reboot_delay=0.5, migrate_delay=0.05)


def start_daemon(daemon_factory, reboot_timeout=20, extra=""):
    return daemon_factory(extra=ENGINE % reboot_timeout + extra).start()


def manage(daemon, *args):
    binary = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")
    return subprocess.run([binary, "--config-file", str(daemon.config)]
                          + list(args), capture_output=True, text=True,
                          timeout=120)


def form_pool(s, names=None):
    """cmp-1..cmp-N registered, aggregate 1 wants them all, one shared SR
    (created once the daemon has formed the pool: see active_pool)."""
    names = names or es.register(s)
    es.want(1, "pool-1", names)
    return names


def active_pool(s, ready=True):
    support.wait_for(lambda: (db_api.get_pool(1) or {}).get("state")
                     == "active" and all(
                         m["state"] == "active"
                         for m in db_api.list_members(1)),
                     timeout=60, what="an active pool")
    if ready:
        s.create_shared_sr(s.hosts[0]["name_label"], "nfs")
        db_api.mark_due(1)
        support.wait_for(lambda: db_api.get_pool(1)["live_migration_ready"],
                         timeout=30, what="a ready pool")


def operations():
    return sorted(db_api.latest_maintenance().values(), key=lambda o: o["id"])


def running_phase(host, phase):
    def check():
        op = db_api.running_maintenance(1)
        return op is not None and (op["current_host"], op["phase"]) == (
            host, phase)
    return check


def test_drain_shows_every_blocker_with_its_code_before_any_vm_moves(
        sim, daemon_factory):
    s = sim(3)
    form_pool(s)
    daemon = start_daemon(daemon_factory)
    active_pool(s)
    xs02 = s.hosts[1]["name_label"]
    movable = s.create_running_vm(xs02, "web", 1024, "nfs")
    s.create_running_vm(xs02, "db-local", 512, "Local storage")
    # It runs where it is, but xs01 and xs03 (32 GiB, dom0 takes 4) have
    # no room for it.
    s.create_running_vm(xs02, "huge", 40 << 10, "nfs")
    for other in (s.hosts[0]["name_label"], s.hosts[2]["name_label"]):
        s.set_memory(other, 32 << 10)
    result = manage(daemon, "host", "drain", "cmp-2", "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "VM db-local" in result.stdout and "VM_REQUIRES_SR" in \
        result.stdout
    assert "VM huge" in result.stdout and "HOST_NOT_ENOUGH_FREE_MEMORY" in \
        result.stdout
    assert "undrain cmp-2" in result.stdout
    assert s.calls("host.evacuate") == []
    assert s.vm_state(movable)["resident_on"] == xs02
    # The host stays disabled, with the reason and the way out.
    assert len(s.calls("host.disable")) == 1
    member = es.members(1)["cmp-2"]
    assert member["state"] == "draining"
    assert member["error_code"] in ("VM_REQUIRES_SR",
                                    "HOST_NOT_ENOUGH_FREE_MEMORY")
    shown = manage(daemon, "pool", "show", "1", "--format", "json")
    assert '"status": "failed"' in shown.stdout
    assert "VM_REQUIRES_SR" in shown.stdout


def test_drain_of_the_master_hands_the_role_over_first(sim, daemon_factory):
    s = sim(3)
    form_pool(s)
    daemon = start_daemon(daemon_factory)
    active_pool(s)
    xs01 = s.hosts[0]["name_label"]
    web = s.create_running_vm(xs01, "web", 1024, "nfs")
    result = manage(daemon, "host", "drain", "cmp-1", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = [o["kind"] for o in es.journal(1)
             if o["kind"] in ("designate_master", "host_disable",
                              "host_evacuate")]
    assert kinds == ["designate_master", "host_disable", "host_evacuate"]
    assert db_api.get_pool(1)["master"] != "cmp-1"
    assert s.role(xs01) == "slave"
    assert es.members(1)["cmp-1"]["state"] == "drained"
    assert s.vm_state(web)["resident_on"] != xs01
    support.wait_for(lambda: db_api.get_pool(1)["reasons"] and any(
        "cmp-1 is drained" in r for r in db_api.get_pool(1)["reasons"]),
        timeout=20, what="the drained reason")
    pool = db_api.get_pool(1)
    assert pool["state"] == "active" and not pool["live_migration_ready"]
    result = manage(daemon, "host", "undrain", "cmp-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert es.members(1)["cmp-1"]["state"] == "active"
    support.wait_for(lambda: db_api.get_pool(1)["live_migration_ready"],
                     timeout=20, what="ready again")


def test_sigkill_mid_drain_resumes_from_the_journal(sim, daemon_factory):
    s = sim(3, migrate_delay=1.0)
    form_pool(s)
    daemon = start_daemon(daemon_factory)
    active_pool(s)
    xs02 = s.hosts[1]["name_label"]
    vms = [s.create_running_vm(xs02, "vm%d" % i, 512, "nfs")
           for i in range(4)]
    assert manage(daemon, "host", "drain", "cmp-2").returncode == 0
    support.wait_for(lambda: any(
        o["status"] == "started" for o in es.journal(1, "host_evacuate")),
        timeout=30, what="host.evacuate in flight")
    os.killpg(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait()
    assert db_api.running_maintenance(1)["phase"] == "evacuate"
    start_daemon(daemon_factory)
    support.wait_for(lambda: operations()[-1]["status"] != "running",
                     timeout=60, what="the drain to end")
    assert operations()[-1]["status"] == "succeeded"
    assert es.members(1)["cmp-2"]["state"] == "drained"
    assert all(s.vm_state(v)["resident_on"] != xs02 for v in vms)
    # The killed call's row is closed by the next holder; xapi went on
    # with the evacuation, so a second host.evacuate is made only for what
    # was still resident when the survivor looked.
    statuses = [o["status"] for o in es.journal(1, "host_evacuate")]
    assert statuses[0] == "abandoned"
    assert set(statuses[1:]) <= {"succeeded"}
    assert len(s.calls("host.disable")) == 1
    assert len(s.calls("host.get_vms_which_prevent_evacuation")) == 1


def test_sigkill_mid_rolling_reboot_resumes_where_it_was(sim,
                                                         daemon_factory):
    s = sim(3, reboot_delay=2.0)
    form_pool(s)
    daemon = start_daemon(daemon_factory)
    active_pool(s)
    s.create_running_vm(s.hosts[0]["name_label"], "web", 1024, "nfs")
    result = manage(daemon, "pool", "rolling-reboot", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    support.wait_for(running_phase("cmp-2", "wait_reboot"), timeout=60,
                     what="cmp-2 rebooting")
    os.killpg(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait()
    # While it is stopped half-way: one rolling operation at a time, and
    # pool show says which host and which phase.
    second = manage(daemon, "pool", "rolling-reboot", "1")
    assert second.returncode == 1
    assert "one at a time" in second.stderr
    shown = manage(daemon, "pool", "show", "1")
    assert "host cmp-2, phase wait_reboot" in shown.stdout
    start_daemon(daemon_factory)
    support.wait_for(lambda: operations()[-1]["status"] != "running",
                     timeout=90, what="the rolling reboot to end")
    op = operations()[-1]
    assert op["status"] == "succeeded", op
    assert op["hosts"][0] == "cmp-1"
    assert [c.host for c in s.calls("host.reboot")] == [
        s.hosts[0]["name_label"]] * 3
    assert [s.boot_count(h["name_label"]) for h in s.hosts] == [1, 1, 1]
    assert all(m["state"] == "active" for m in db_api.list_members(1))


def test_a_host_that_does_not_come_back_stops_the_run_with_a_reason(
        sim, daemon_factory):
    s = sim(3)
    form_pool(s)
    daemon = start_daemon(daemon_factory, reboot_timeout=3)
    active_pool(s)
    s.set_reboot_hangs(s.hosts[1]["name_label"])
    result = manage(daemon, "pool", "rolling-reboot", "1", "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cmp-2 did not come back within [xenserver] reboot_timeout" in \
        result.stdout
    op = operations()[-1]
    assert (op["status"], op["current_host"]) == ("failed", "cmp-2")
    # cmp-3 was never touched.
    assert len(s.calls("host.reboot")) == 2
    assert es.members(1)["cmp-3"]["state"] == "active"
    assert es.members(1)["cmp-2"]["error_code"] == "HOST_REBOOT_TIMEOUT"


def test_drain_of_a_host_in_no_pool_is_one_line_exit_1(manage):
    result = manage("host", "drain", "nosuch")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "poolmgr-manage: nosuch is not a member of any pool poolmgr "
        "manages"]


def test_rolling_reboot_without_aggregate_is_usage_exit_2(manage):
    result = manage("pool", "rolling-reboot")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "error: the following arguments are required: AGGREGATE")
