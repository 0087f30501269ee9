"""Shared storage: SR.create, PBD plug/unplug, SR.introduce/forget, and the
events they produce (reference/xapi.md §2.1 step 11, §6, §7)."""

import pytest

from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login

NFS = {"server": "nfs.example", "serverpath": "/export/vms"}


def sr_create(session, host_ref, name="NFS", shared=True, config=NFS):
    # xapi's 9 arguments: host, device_config, physical_size, name_label,
    # name_description, type, content_type, shared, sm_config
    return session.xenapi.SR.create(host_ref, config, "0", name, "shared",
                                    "nfs", "user", shared, {})


def event_from(session, classes, token, timeout=0.5):
    return getattr(session.xenapi.event, "from")(classes, token, timeout)


@pytest.fixture
def pool(simulator):
    """xs01 master with xs02 and xs03; returns (sim, master session)."""
    sim = simulator(hosts=3)
    join(sim, sim.hosts[1], sim.hosts[0])
    return sim, join(sim, sim.hosts[2], sim.hosts[0])


def pbds_by_host(session, sr):
    return {session.xenapi.PBD.get_host(p): session.xenapi.PBD.get_record(p)
            for p in session.xenapi.SR.get_PBDs(sr)}


def test_shared_sr_pbds_carry_srmaster_only_on_the_master(pool):
    sim, master = pool
    master_ref = master.xenapi.pool.get_master(
        master.xenapi.pool.get_all()[0])
    sr = sr_create(master, master_ref)
    record = master.xenapi.SR.get_record(sr)
    assert record["shared"] is True
    assert (record["type"], record["content_type"]) == ("nfs", "user")
    assert record["name_label"] == "NFS"
    pbds = pbds_by_host(master, sr)
    assert set(pbds) == set(master.xenapi.host.get_all())
    assert all(p["currently_attached"] for p in pbds.values())
    assert pbds[master_ref]["device_config"] == dict(NFS, SRmaster="true")
    for host, pbd in pbds.items():
        if host != master_ref:
            assert pbd["device_config"] == NFS
        assert pbd["SR"] == sr


def test_sr_create_for_an_unknown_host_is_handle_invalid(pool):
    sim, master = pool
    bogus = "OpaqueRef:22222222-2222-2222-2222-222222222222"
    assert fails(sr_create, master, bogus) == ["HANDLE_INVALID", "host", bogus]


def test_pbd_create_repairs_a_member_missing_from_a_shared_sr(pool):
    sim, master = pool
    slave = master.xenapi.host.get_by_uuid(sim.hosts[2]["uuid"])
    sr = sr_create(master, master.xenapi.host.get_all()[0])
    pbd = pbds_by_host(master, sr)[slave]
    old = next(p for p in master.xenapi.SR.get_PBDs(sr)
               if master.xenapi.PBD.get_host(p) == slave)
    master.xenapi.PBD.unplug(old)
    assert master.xenapi.PBD.destroy(old) == ""
    assert slave not in pbds_by_host(master, sr)
    new = master.xenapi.PBD.create({"host": slave, "SR": sr,
                                    "device_config": pbd["device_config"],
                                    "other_config": {}})
    assert master.xenapi.PBD.get_currently_attached(new) is False
    master.xenapi.PBD.plug(new)
    assert pbds_by_host(master, sr)[slave]["currently_attached"] is True


def test_destroying_an_attached_pbd_is_refused(pool):
    sim, master = pool
    sr = sr_create(master, master.xenapi.host.get_all()[0])
    pbd = master.xenapi.SR.get_PBDs(sr)[0]
    # xapi_pbd.ml: destroy of an attached PBD is not a DEVICE_* error
    assert fails(master.xenapi.PBD.destroy, pbd) == \
        ["OPERATION_NOT_ALLOWED", "PBD is currently attached"]
    assert pbd in master.xenapi.SR.get_PBDs(sr)


def test_sr_introduce_then_forget(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    uuid = "5f5a3c4e-1111-4222-8333-944445555666"
    sr = session.xenapi.SR.introduce(uuid, "ISO", "", "iso", "iso", True, {})
    assert session.xenapi.SR.get_by_uuid(uuid) == sr
    assert session.xenapi.SR.get_PBDs(sr) == []
    assert session.xenapi.SR.introduce(uuid, "ISO", "", "iso", "iso", True,
                                       {}) == sr
    assert session.xenapi.SR.forget(sr) == ""
    assert fails(session.xenapi.SR.get_by_uuid, uuid) == \
        ["UUID_INVALID", "SR", uuid]


def test_pool_default_sr_must_be_a_known_sr(pool):
    sim, master = pool
    sr = sr_create(master, master.xenapi.host.get_all()[0])
    pool_ref = master.xenapi.pool.get_all()[0]
    assert master.xenapi.pool.set_default_SR(pool_ref, sr) == ""
    bogus = "OpaqueRef:33333333-3333-3333-3333-333333333333"
    assert fails(master.xenapi.pool.set_default_SR, pool_ref, bogus) == \
        ["HANDLE_INVALID", "SR", bogus]


# -- what a reconciler following event.from sees of storage -------------------

def test_shared_sr_create_is_seen_as_adds_of_the_sr_and_its_pbds(pool):
    sim, master = pool
    token = event_from(master, ["sr", "pbd"], "")["token"]
    sr = sr_create(master, master.xenapi.host.get_all()[0])
    batch = event_from(master, ["sr", "pbd"], token)
    adds = {(e["class"], e["ref"]) for e in batch["events"]
            if e["operation"] == "add"}
    assert ("sr", sr) in adds
    assert {ref for cls, ref in adds if cls == "pbd"} == \
        set(master.xenapi.SR.get_PBDs(sr))
    snapshot = next(e["snapshot"] for e in batch["events"] if e["ref"] == sr)
    assert snapshot["shared"] is True


def test_pbd_unplug_is_one_mod_event_with_the_new_state(pool):
    sim, master = pool
    sr = sr_create(master, master.xenapi.host.get_all()[0])
    pbd = master.xenapi.SR.get_PBDs(sr)[0]
    token = event_from(master, ["pbd"], "")["token"]
    master.xenapi.PBD.unplug(pbd)
    master.xenapi.PBD.plug(pbd)
    master.xenapi.PBD.unplug(pbd)
    batch = event_from(master, ["pbd"], token)
    assert [(e["operation"], e["ref"]) for e in batch["events"]] == \
        [("mod", pbd)]
    assert batch["events"][0]["snapshot"]["currently_attached"] is False
    assert batch["token"] > token


def test_sr_forget_is_seen_as_del_events_without_snapshot(pool):
    sim, master = pool
    sr = sr_create(master, master.xenapi.host.get_all()[0])
    pbds = master.xenapi.SR.get_PBDs(sr)
    for pbd in pbds:
        master.xenapi.PBD.unplug(pbd)
    token = event_from(master, ["sr", "pbd"], "")["token"]
    master.xenapi.SR.forget(sr)
    batch = event_from(master, ["sr", "pbd"], token)
    dels = {(e["class"], e["ref"]) for e in batch["events"]
            if e["operation"] == "del"}
    assert dels == {("sr", sr)} | {("pbd", p) for p in pbds}
    assert all("snapshot" not in e for e in batch["events"]
               if e["operation"] == "del")


def test_eject_is_seen_as_del_of_the_host_and_its_pbds(pool):
    sim, master = pool
    sr = sr_create(master, master.xenapi.host.get_all()[0])
    slave = master.xenapi.host.get_by_uuid(sim.hosts[1]["uuid"])
    slave_pbds = set(master.xenapi.host.get_PBDs(slave))
    token = event_from(master, ["host", "pbd", "sr"], "")["token"]
    master.xenapi.pool.eject(slave)
    batch = event_from(master, ["host", "pbd", "sr"], token)
    dels = {(e["class"], e["ref"]) for e in batch["events"]
            if e["operation"] == "del"}
    assert ("host", slave) in dels
    assert {("pbd", p) for p in slave_pbds} <= dels
    assert ("sr", sr) not in dels
