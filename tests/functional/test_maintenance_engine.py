"""Drain, undrain and rolling reboot with the engine in process (issue 26).

Real MariaDB, the simulator through the real XenAPI client.
"""

import pytest

from poolmgr.db import api as db_api
from poolmgr.engine import maintenance
from tests.functional import engine_support as es


@pytest.fixture
def sim(request, mysql_url):
    return es.sim_factory(request, password=es.PASSWORD, reboot_delay=0.5,
                          migrate_delay=0.05)


def form(s, conf):
    names = es.register(s)
    es.want(1, "pool-1", names)
    engine = es.engine(conf)
    assert engine.reconcile_pool(1).converged
    s.create_shared_sr(s.hosts[0]["name_label"], "nfs")
    assert es.until_settled(engine, 1).converged
    return names, engine


def request(kind, hosts):
    return db_api.start_maintenance(1, kind, hosts,
                                    maintenance.first_phase(kind),
                                    current_host=hosts[0])


def test_drain_moves_every_vm_away_and_undrain_puts_it_back(sim):
    s = sim(3)
    conf = es.make_conf()
    names, engine = form(s, conf)
    xs02 = s.hosts[1]["name_label"]
    web = s.create_running_vm(xs02, "web", 1024, "nfs")
    op = request(db_api.MAINT_DRAIN, ["cmp-2"])
    es.until_settled(engine, 1)
    assert db_api.get_maintenance(op["id"])["status"] == "succeeded"
    assert es.members(1)["cmp-2"]["state"] == "drained"
    assert s.vm_state(web)["resident_on"] != xs02
    pool = db_api.get_pool(1)
    assert pool["state"] == "active"
    assert not pool["live_migration_ready"]
    assert any("cmp-2 is drained" in r for r in pool["reasons"])
    op = request(db_api.MAINT_UNDRAIN, ["cmp-2"])
    es.until_settled(engine, 1)
    assert db_api.get_maintenance(op["id"])["status"] == "succeeded"
    assert es.members(1)["cmp-2"]["state"] == "active"
    assert db_api.get_pool(1)["live_migration_ready"]


def test_rolling_reboot_reboots_master_first_then_each_member(sim):
    s = sim(3)
    conf = es.make_conf()
    names, engine = form(s, conf)
    s.create_running_vm(s.hosts[0]["name_label"], "web", 1024, "nfs")
    op = request(db_api.MAINT_ROLLING_REBOOT, ["cmp-2", "cmp-1", "cmp-3"])
    es.until_settled(engine, 1, passes=200)
    row = db_api.get_maintenance(op["id"])
    assert row["status"] == "succeeded", row
    assert row["hosts"] == ["cmp-1", "cmp-2", "cmp-3"]
    assert [s.boot_count(h["name_label"]) for h in s.hosts] == [1, 1, 1]
    reboots = [o["host"] for o in es.journal(1, kind="host_reboot")]
    assert reboots == ["cmp-1", "cmp-2", "cmp-3"]
    assert db_api.get_pool(1)["state"] == "active"


def test_rolling_reboot_checks_every_host_before_touching_any(sim):
    s = sim(3)
    conf = es.make_conf()
    names, engine = form(s, conf)
    s.create_running_vm(s.hosts[2]["name_label"], "pinned", 512,
                        "Local storage")
    op = request(db_api.MAINT_ROLLING_REBOOT, names)
    es.until_settled(engine, 1)
    row = db_api.get_maintenance(op["id"])
    assert row["status"] == "failed"
    assert row["reason"].startswith("rolling reboot not started")
    assert "VM pinned" in row["reason"] and "VM_REQUIRES_SR" in row["reason"]
    assert s.calls("host.disable") == [] and s.calls("host.reboot") == []
    assert all(m["state"] == "active" for m in db_api.list_members(1))


def test_drain_shuts_the_compute_vm_down_on_its_host_and_undrain_starts_it(
        sim):
    from poolmgr.db import compute_vms
    s = sim(3, compute_vms=True)
    conf = es.make_conf()
    names = es.register(s)
    for name, host in zip(names, s.hosts):
        compute_vms.set_compute_vm(name, host["compute_vm_uuid"])
    es.want(1, "pool-1", names)
    engine = es.engine(conf)
    assert es.until_settled(engine, 1).converged
    s.create_shared_sr(s.hosts[0]["name_label"], "nfs")
    es.until_settled(engine, 1)
    xs02, cvm = s.hosts[1]["name_label"], s.hosts[1]["compute_vm_uuid"]
    guest = s.create_running_vm(xs02, "guest", 1024, "nfs")
    request(db_api.MAINT_DRAIN, ["cmp-2"])
    es.until_settled(engine, 1)
    assert es.members(1)["cmp-2"]["state"] == "drained"
    assert s.vm_state(guest)["resident_on"] != xs02
    # Shut down, never migrated away from its host.
    assert s.vm_state(cvm)["power_state"] == "Halted"
    assert s.calls("VM.pool_migrate") == []
    request(db_api.MAINT_UNDRAIN, ["cmp-2"])
    es.until_settled(engine, 1)
    assert s.vm_state(cvm) == dict(s.vm_state(cvm), power_state="Running",
                                   resident_on=xs02)
    assert es.members(1)["cmp-2"]["state"] == "active"
