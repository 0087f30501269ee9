"""A dead master, as xapi shows it (reference/operations.md §1)."""

import socket
import xmlrpc.client

import pytest

from tests.simulator.sim_client import PASSWORD
from tests.simulator.sim_client import USER
from tests.simulator.sim_client import connect
from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login


def local_login(host):
    session = connect(host)
    session.slave_local_login_with_password(USER, PASSWORD)
    return session


def pool_of_three(simulator):
    sim = simulator(hosts=3)
    master, b, c = sim.hosts
    join(sim, b, master)
    join(sim, c, master)
    return sim, master, b, c


def test_a_killed_xapi_refuses_connections_and_its_vms_keep_running(
        simulator):
    sim, master, b, c = pool_of_three(simulator)
    vm = sim.create_running_vm("xs01", "guest")
    sim.kill_xapi("xs01")
    with pytest.raises(ConnectionRefusedError):
        login(master)
    assert sim.vm_state(vm)["power_state"] == "Running"
    assert sim.vm_state(vm)["resident_on"] == "xs01"


def test_members_of_a_dead_master_name_it_and_serve_slave_local_logins(
        simulator):
    sim, master, b, c = pool_of_three(simulator)
    sim.kill_xapi("xs01")
    assert fails(login, b) == ["HOST_IS_SLAVE", master["address"]]
    session = local_login(b)
    assert session.xenapi.host.is_in_emergency_mode() is False
    # Only the emergency calls are served on a slave-local session.
    assert fails(session.xenapi.pool.get_all)[0] == "HOST_IS_SLAVE"


def test_emergency_transition_then_recover_slaves_make_a_new_master(
        simulator):
    sim, master, b, c = pool_of_three(simulator)
    sim.kill_xapi("xs01")
    local_login(b).xenapi.pool.emergency_transition_to_master()
    new = login(b)
    recovered = new.xenapi.pool.recover_slaves()
    c_ref = new.xenapi.host.get_by_uuid(c["uuid"])
    assert recovered == [c_ref]
    assert fails(login, c) == ["HOST_IS_SLAVE", b["address"]]
    pool = new.xenapi.pool.get_all_records()
    assert [p["master"] for p in pool.values()] == [
        new.xenapi.host.get_by_uuid(b["uuid"])]


def test_recover_slaves_skips_an_unreachable_member_silently(simulator):
    sim = simulator(hosts=4)
    for other in sim.hosts[1:]:
        join(sim, other, sim.hosts[0])
    sim.kill_xapi("xs01")
    sim.set_offline("xs04")
    local_login(sim.hosts[1]).xenapi.pool.emergency_transition_to_master()
    new = login(sim.hosts[1])
    recovered = new.xenapi.pool.recover_slaves()
    assert recovered == [new.xenapi.host.get_by_uuid(sim.hosts[2]["uuid"])]
    sim.set_offline("xs04", False)
    assert fails(login, sim.hosts[3]) == ["HOST_IS_SLAVE",
                                          sim.hosts[0]["address"]]


def test_emergency_transition_is_refused_when_ha_is_enabled(simulator):
    sim, master, b, c = pool_of_three(simulator)
    sim.set_ha_enabled("xs01")
    sim.kill_xapi("xs01")
    session = local_login(b)
    assert fails(session.xenapi.pool.emergency_transition_to_master) == [
        "HA_IS_ENABLED"]
    assert sim.role("xs02") == "slave"


def test_pool_join_is_refused_when_ha_is_enabled(simulator):
    sim = simulator(hosts=2)
    sim.set_ha_enabled("xs01")
    session = login(sim.hosts[1])
    assert fails(session.xenapi.pool.join, sim.hosts[0]["address"], USER,
                 PASSWORD) == ["HA_IS_ENABLED"]


def test_a_revived_old_master_still_believes_it_is_master(simulator):
    sim, master, b, c = pool_of_three(simulator)
    sim.kill_xapi("xs01")
    local_login(b).xenapi.pool.emergency_transition_to_master()
    login(b).xenapi.pool.recover_slaves()
    sim.revive_xapi("xs01")
    stale = login(master)
    records = stale.xenapi.pool.get_all_records()
    (pool,) = records.values()
    assert stale.xenapi.host.get_record(pool["master"])["uuid"] == \
        master["uuid"]
    assert sorted(r["uuid"] for r in
                  stale.xenapi.host.get_all_records().values()) == sorted(
        h["uuid"] for h in (master, b, c))
    # The new master's pool lists the old one, not live.
    new = login(b)
    old_ref = new.xenapi.host.get_by_uuid(master["uuid"])
    metrics = new.xenapi.host.get_metrics(old_ref)
    assert new.xenapi.host_metrics.get_live(metrics) is False
    assert sim.role("xs01") == "master"


def test_kill_and_revive_over_the_sim_namespace(simulator):
    sim, master, b, c = pool_of_three(simulator)
    proxy = xmlrpc.client.ServerProxy(b["url"])
    assert getattr(proxy, "sim.kill_xapi")("xs01") == {
        "Status": "Success", "Value": ""}
    with pytest.raises(OSError):
        socket.create_connection((master["address"], sim.port), timeout=2)
    getattr(proxy, "sim.revive_xapi")("xs01")
    assert login(master).xenapi.pool.get_all()
