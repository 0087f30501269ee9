"""The canary proof of live migration, through the engine and the real
XenAPI client against the simulator (issue 26 part 3)."""

import signal

import pytest
import XenAPI

from poolmgr.cmd import views
from poolmgr.db import api as db_api
from tests.functional import engine_support as es

CANARY = "poolmgr-canary-1"


@pytest.fixture
def conf():
    conf = es.make_conf()
    conf.set_override("canary_vm_template", "tpl", group="xenserver")
    return conf


def _pool_with_template(sim, hosts=3, **template):
    """``hosts`` simulated hosts; xs01 (the master-to-be) has the shared SR
    NFS and the template "tpl" on it, so every joiner gets the SR."""
    s = sim(hosts)
    s.create_shared_sr(1, "NFS")
    s.add_template(1, "tpl", **template)
    return s, es.register(s)


def _proof():
    return db_api.get_pool(1)["canary_proof"]


def _view():
    agg = db_api.find_aggregate(1)
    return views.pool_view(agg, *db_api.pool_rows(1))


def _kinds(prefix="canary_"):
    return [(o["kind"], o["status"]) for o in es.journal(1)
            if o["kind"].startswith(prefix)]


def _master(s):
    session = XenAPI.Session(s.hosts[0]["url"])
    session.xenapi.login_with_password("root", es.PASSWORD, "2.21", "test")
    return session


def test_an_active_pool_is_proven_hop_by_hop_and_the_canary_destroyed(
        sim, conf):
    s, names = _pool_with_template(sim)
    es.want(1, "pool-a", names)
    assert es.engine(conf).reconcile_pool(1).converged
    record = _proof()
    assert record["status"] == "proven", record
    assert [(h["from"], h["to"]) for h in record["hops"]] == [
        ("cmp-1", "cmp-2"), ("cmp-2", "cmp-3")]
    assert all(h["seconds"] >= 0 for h in record["hops"])
    assert _kinds() == [("canary_create", "succeeded"),
                        ("canary_start", "succeeded"),
                        ("canary_migrate", "succeeded"),
                        ("canary_migrate", "succeeded"),
                        ("canary_destroy", "succeeded")]
    migrations = es.calls(s, "VM.pool_migrate")
    assert len(migrations) == 2
    assert all(c.params[-1] == {"live": "true"} for c in migrations)
    assert es.calls(s, "VM.clone") and es.calls(s, "VM.provision")
    assert s.vms_named(1, CANARY) == []
    assert len(s.vms_named(1, "tpl")) == 1
    view = _view()
    assert view["state"] == "active"
    assert view["live_migration_ready"] is True
    assert view["live_migration_proof"].startswith(
        "proven at %s (2 hops, p50 " % record["at"]), view
    assert "live migration proof: proven at" in views.pool_show_text(view)


def test_the_hop_times_are_those_of_the_migrations(sim, conf):
    s, names = _pool_with_template(sim, hosts=2)
    s.set_migrate_delay(0.4)
    es.want(1, "pool-a", names)
    assert es.engine(conf).reconcile_pool(1).converged
    (hop,) = _proof()["hops"]
    assert 0.4 <= hop["seconds"] < 3.0
    assert "(1 hop, p50 0.4" in _view()["live_migration_proof"]


def test_a_proof_is_not_redone_by_resyncs_nor_a_new_engine(sim, conf):
    s, names = _pool_with_template(sim)
    es.want(1, "pool-a", names)
    assert es.engine(conf).reconcile_pool(1).converged
    first = _proof()
    for _ in range(2):
        db_api.mark_due(1)
        assert es.engine(conf).reconcile_pool(1).converged
    assert _proof() == first
    assert len(es.calls(s, "VM.clone")) == 1


def test_a_membership_change_asks_for_a_new_proof(sim, conf):
    s, names = _pool_with_template(sim)
    es.want(1, "pool-a", names[:2])
    engine = es.engine(conf)
    assert engine.reconcile_pool(1).converged
    assert len(_proof()["hops"]) == 1
    es.want(1, "pool-a", names)
    assert engine.reconcile_pool(1).converged
    record = _proof()
    assert record["status"] == "proven"
    assert [h["to"] for h in record["hops"]] == ["cmp-2", "cmp-3"]
    assert len(record["members"]) == 3


def test_a_hop_without_memory_fails_with_xapis_code_and_not_ready(sim,
                                                                  conf):
    s, names = _pool_with_template(sim, memory=512 << 20)
    s.set_memory_free("xs03", 100 << 20)
    es.want(1, "pool-a", names)
    assert es.engine(conf).reconcile_pool(1).converged
    record = _proof()
    assert record["status"] == "failed"
    failure = record["failure"]
    assert (failure["step"], failure["from"], failure["to"],
            failure["code"], failure["params"]) == (
        "migrate", "cmp-2", "cmp-3", "HOST_NOT_ENOUGH_FREE_MEMORY",
        [str(512 << 20), str(100 << 20)])
    assert [h["to"] for h in record["hops"]] == ["cmp-2"]
    assert ("canary_migrate", "failed") in _kinds()
    assert _kinds()[-1] == ("canary_destroy", "succeeded")
    assert s.vms_named(1, CANARY) == []
    view = _view()
    assert view["state"] == "active"
    assert view["live_migration_ready"] is False
    assert "cmp-2 -> cmp-3: HOST_NOT_ENOUGH_FREE_MEMORY" in \
        view["live_migration_proof"]
    assert any("HOST_NOT_ENOUGH_FREE_MEMORY" in r for r in view["reasons"])
    # A permanent failure is not retried at every resync (NOTE(once)).
    db_api.mark_due(1)
    es.engine(conf).reconcile_pool(1)
    assert len(es.calls(s, "VM.clone")) == 1
    assert db_api.get_pool(1)["live_migration_ready"] is False


def test_prove_shows_vm_requires_sr_then_proves_after_the_fix(sim, conf):
    s, names = _pool_with_template(sim)
    es.want(1, "pool-a", names)
    engine = es.engine(conf)
    assert engine.reconcile_pool(1).converged
    s.unplug_pbd("xs02", "NFS")
    record, message = engine.prove_pool(1)
    failure = record["failure"]
    sr = _master(s).xenapi.SR.get_by_name_label("NFS")[0]
    assert (failure["from"], failure["to"], failure["code"]) == (
        "cmp-1", "cmp-2", "VM_REQUIRES_SR")
    assert failure["params"][1] == sr
    assert "cmp-1 -> cmp-2: VM_REQUIRES_SR" in message
    assert record["hops"] == []
    assert s.vms_named(1, CANARY) == []
    assert db_api.get_pool(1)["live_migration_ready"] is False
    # The next pass plugs the PBD again; the failed proof still speaks
    # for these members until it is proven again.
    db_api.mark_due(1)
    assert engine.reconcile_pool(1).converged
    assert db_api.get_pool(1)["live_migration_ready"] is False
    record, message = engine.prove_pool(1)
    assert record["status"] == "proven", message
    assert db_api.get_pool(1)["live_migration_ready"] is True


def test_without_a_template_there_is_no_canary(sim):
    conf = es.make_conf()
    s, names = _pool_with_template(sim)
    es.want(1, "pool-a", names)
    assert es.engine(conf).reconcile_pool(1).converged
    assert _proof() is None
    assert es.calls(s, "VM.clone") == [] and _kinds() == []
    view = _view()
    assert view["live_migration_proof"] is None
    assert view["live_migration_ready"] is True
    record, message = es.engine(conf).prove_pool(1)
    assert record is None and "canary_vm_template is not set" in message


def test_a_missing_template_is_a_failed_proof_that_says_so(sim, conf):
    s = sim(2)
    s.create_shared_sr(1, "NFS")
    es.want(1, "pool-a", es.register(s))
    assert es.engine(conf).reconcile_pool(1).converged
    record = _proof()
    assert record["status"] == "failed"
    assert record["failure"]["code"] is None
    assert "no VM template named 'tpl'" in _view()["live_migration_proof"]
    assert db_api.get_pool(1)["live_migration_ready"] is False


def test_a_canary_left_by_a_killed_engine_is_destroyed_next_time(
        sim, tmp_path, mysql_url):
    s, names = _pool_with_template(sim)
    s.set_migrate_delay(30)
    es.want(1, "pool-a", names)
    config = es.write_config(tmp_path / "poolmgr.conf", mysql_url)
    config.write_text(config.read_text().replace(
        "[xenserver]\n", "[xenserver]\ncanary_vm_template = tpl\n"))
    proc = es.spawn_engine(config, "doomed")
    try:
        es.wait_for(lambda: ("canary_migrate", "started") in _kinds(),
                    timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (leftover,) = s.vms_named(1, CANARY)
    assert leftover["other_config"] == {"poolmgr_canary": "1"}
    assert _proof() is None
    # Someone else's VM with the canary's name but not its tag stays.
    master = _master(s)
    other = master.xenapi.VM.clone(master.xenapi.VM.get_by_name_label(
        "tpl")[0], CANARY)
    s.set_migrate_delay(0)
    conf = es.make_conf()
    conf.set_override("canary_vm_template", "tpl", group="xenserver")
    db_api.mark_due(1)
    assert es.engine(conf).reconcile_pool(1).converged
    assert _proof()["status"] == "proven"
    (kept,) = s.vms_named(1, CANARY)
    assert kept["uuid"] == master.xenapi.VM.get_uuid(other)
    assert leftover["vdis"][0] not in [
        rec["uuid"] for rec in master.xenapi.VDI.get_all_records().values()]
    assert ("canary_destroy", "succeeded") in _kinds()


def test_a_pool_of_one_member_starts_no_canary(sim, conf):
    s, names = _pool_with_template(sim, hosts=1)
    es.want(1, "pool-a", names)
    assert es.engine(conf).reconcile_pool(1).converged
    assert _proof()["status"] == "single"
    assert es.calls(s, "VM.clone") == []
    assert "the pool has one member" in _view()["live_migration_proof"]
