"""pool.eject, designate_new_master, the emergency calls and host.destroy
(reference/xapi.md §3, §4)."""

import pytest

from tests.simulator.sim_client import PASSWORD
from tests.simulator.sim_client import USER
from tests.simulator.sim_client import connect
from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login
from tests.simulator.sim_client import wait_for


@pytest.fixture
def pool(simulator):
    """xs01 master, xs02 and xs03 slaves; returns (sim, master session)."""
    sim = simulator(hosts=3)
    join(sim, sim.hosts[1], sim.hosts[0])
    return sim, join(sim, sim.hosts[2], sim.hosts[0])


def ref_of(session, host):
    return session.xenapi.host.get_by_uuid(host["uuid"])


def wait_standalone(sim, index):
    wait_for(lambda: sim.role(index) == "master"
             and sim.master_of(index) == sim.hosts[index - 1]["name_label"])

    def logged_in():
        try:
            return login(sim.hosts[index - 1])
        except OSError:
            return None
    return wait_for(logged_in)


# -- checks, in xapi's order (§3.1) -------------------------------------------

def test_eject_of_an_offline_host_is_host_offline(pool):
    sim, master = pool
    slave = ref_of(master, sim.hosts[1])
    sim.set_offline(2)
    assert fails(master.xenapi.pool.eject, slave) == ["HOST_OFFLINE", slave]


def test_eject_with_ha_enabled_is_refused(pool):
    sim, master = pool
    sim.set_ha(1)
    assert fails(master.xenapi.pool.eject, ref_of(master, sim.hosts[1])) == \
        ["HA_IS_ENABLED"]


def test_ejecting_the_master_is_an_internal_error(pool):
    sim, master = pool
    assert fails(master.xenapi.pool.eject, ref_of(master, sim.hosts[0])) == \
        ["INTERNAL_ERROR", "Xapi_pool.Cannot_eject_master"]


def test_eject_refused_while_a_vm_runs_on_the_host(pool):
    sim, master = pool
    sim.create_running_vm(2)
    assert fails(master.xenapi.pool.eject, ref_of(master, sim.hosts[1])) == \
        ["OPERATION_NOT_ALLOWED", "VM resident on host"]


def test_paused_vm_blocks_eject_but_halted_does_not(pool):
    sim, master = pool
    slave = ref_of(master, sim.hosts[1])
    vm = master.xenapi.VM.create({"name_label": "paused"})
    master.xenapi.VM.start_on(vm, slave, True, False)
    assert master.xenapi.VM.get_power_state(vm) == "Paused"
    assert fails(master.xenapi.pool.eject, slave) == \
        ["OPERATION_NOT_ALLOWED", "VM resident on host"]
    master.xenapi.VM.hard_shutdown(vm)
    assert master.xenapi.pool.eject(slave) == ""


def test_eject_checks_offline_before_ha(pool):
    sim, master = pool
    slave = ref_of(master, sim.hosts[1])
    sim.set_ha(1)
    sim.set_offline(2)
    assert fails(master.xenapi.pool.eject, slave) == ["HOST_OFFLINE", slave]


def test_eject_checks_ha_before_master_and_running_vms(pool):
    sim, master = pool
    sim.create_running_vm(2)
    sim.set_ha(1)
    assert fails(master.xenapi.pool.eject, ref_of(master, sim.hosts[0])) == \
        ["HA_IS_ENABLED"]
    assert fails(master.xenapi.pool.eject, ref_of(master, sim.hosts[1])) == \
        ["HA_IS_ENABLED"]


def test_eject_of_an_unknown_ref_is_handle_invalid(pool):
    sim, master = pool
    bogus = "OpaqueRef:11111111-1111-1111-1111-111111111111"
    assert fails(master.xenapi.pool.eject, bogus) == \
        ["HANDLE_INVALID", "host", bogus]


# -- after the eject ----------------------------------------------------------

def test_ejected_host_leaves_the_masters_database(pool):
    sim, master = pool
    sim.create_shared_sr(1, name_label="NFS")
    slave = ref_of(master, sim.hosts[1])
    slave_pbds = master.xenapi.host.get_PBDs(slave)
    assert master.xenapi.pool.eject(slave) == ""
    assert slave not in master.xenapi.host.get_all()
    remaining = master.xenapi.PBD.get_all()
    assert not set(slave_pbds) & set(remaining)
    names = [master.xenapi.SR.get_name_label(sr)
             for sr in master.xenapi.SR.get_all()]
    assert names.count("Local storage") == 2  # xs01's and xs03's
    sr = master.xenapi.SR.get_by_name_label("NFS")[0]
    assert len(master.xenapi.SR.get_PBDs(sr)) == 2


def test_ejected_host_becomes_master_of_a_new_pool_with_same_uuid(pool):
    sim, master = pool
    ejected = sim.hosts[1]
    old_pool = sim.pool_uuid(1)
    old_ref = ref_of(master, ejected)
    old_local_sr = [master.xenapi.PBD.get_SR(p)
                    for p in master.xenapi.host.get_PBDs(old_ref)]
    old_sr_uuids = {master.xenapi.SR.get_uuid(sr) for sr in old_local_sr}
    master.xenapi.pool.eject(old_ref)
    session = wait_standalone(sim, 2)
    hosts = session.xenapi.host.get_all()
    assert len(hosts) == 1
    assert session.xenapi.host.get_uuid(hosts[0]) == ejected["uuid"]
    assert hosts[0] != old_ref
    pool_ref = session.xenapi.pool.get_all()[0]
    assert session.xenapi.pool.get_uuid(pool_ref) != old_pool
    assert session.xenapi.pool.get_master(pool_ref) == hosts[0]
    srs = session.xenapi.SR.get_all_records()
    assert [sr["name_label"] for sr in srs.values()] == ["Local storage"]
    assert not {sr["uuid"] for sr in srs.values()} & old_sr_uuids
    assert not set(srs) & set(old_local_sr)
    # the ex-slave is gone from the master's view, the master unchanged
    assert len(master.xenapi.host.get_all()) == 2
    assert sim.pool_uuid(1) == old_pool


def test_ejected_host_can_join_again(pool):
    sim, master = pool
    master.xenapi.pool.eject(ref_of(master, sim.hosts[1]))
    wait_standalone(sim, 2)
    master = join(sim, sim.hosts[1], sim.hosts[0])
    assert len(master.xenapi.host.get_all()) == 3


# -- designate_new_master -----------------------------------------------------

def _answer(host):
    """What a login on ``host`` gets: None while it refuses connections."""
    try:
        connect(host).xenapi.login_with_password(USER, PASSWORD)
    except OSError:
        return None
    except Exception as exc:  # noqa: BLE001 - XenAPI.Failure expected
        return exc.details
    return ["logged in"]


def test_designate_new_master_moves_the_master_role(simulator):
    sim = simulator(hosts=3)
    join(sim, sim.hosts[0], sim.hosts[1])
    master = join(sim, sim.hosts[2], sim.hosts[1])
    old, new = sim.hosts[1], sim.hosts[2]
    assert master.xenapi.pool.designate_new_master(ref_of(master, new)) == ""
    wait_for(lambda: sim.role(3) == "master" and sim.role(2) == "slave")
    assert wait_for(lambda: _answer(new)) == ["logged in"]
    session = login(new)
    pool_ref = session.xenapi.pool.get_all()[0]
    assert session.xenapi.host.get_uuid(
        session.xenapi.pool.get_master(pool_ref)) == new["uuid"]
    assert len(session.xenapi.host.get_all()) == 3
    assert wait_for(lambda: _answer(old)) == ["HOST_IS_SLAVE", new["address"]]
    # the third member follows the new master too
    assert _answer(sim.hosts[0]) == ["HOST_IS_SLAVE", new["address"]]


def test_first_host_serves_again_on_the_common_port_after_a_restart(pool):
    # regression: with port=0 the first host came back on a random port
    sim, master = pool
    master.xenapi.pool.designate_new_master(ref_of(master, sim.hosts[1]))
    assert wait_for(lambda: _answer(sim.hosts[0]), timeout=3) == \
        ["HOST_IS_SLAVE", sim.hosts[1]["address"]]


def test_designating_the_current_master_is_a_no_op(pool):
    sim, master = pool
    assert master.xenapi.pool.designate_new_master(
        ref_of(master, sim.hosts[0])) == ""
    assert sim.role(1) == "master"
    assert master.xenapi.host.get_all()


def test_designate_new_master_refused_with_ha(pool):
    sim, master = pool
    sim.set_ha(1)
    assert fails(master.xenapi.pool.designate_new_master,
                 ref_of(master, sim.hosts[1])) == ["HA_IS_ENABLED"]


# -- emergency calls ----------------------------------------------------------

def test_emergency_transition_and_recover_slaves(pool):
    sim, master = pool
    sim.set_offline(1)  # the master dies
    local = connect(sim.hosts[1])
    local.slave_local_login_with_password(USER, PASSWORD)
    assert local.xenapi.host.is_in_emergency_mode() in (True, False)
    assert local.xenapi.pool.emergency_transition_to_master() == ""
    assert sim.role(2) == "master"
    local.xenapi.session.logout()
    session = login(sim.hosts[1])
    pool_ref = session.xenapi.pool.get_all()[0]
    assert session.xenapi.host.get_uuid(
        session.xenapi.pool.get_master(pool_ref)) == sim.hosts[1]["uuid"]
    recovered = session.xenapi.pool.recover_slaves()
    assert recovered == [ref_of(session, sim.hosts[2])]
    assert fails(connect(sim.hosts[2]).xenapi.login_with_password, USER,
                 PASSWORD) == ["HOST_IS_SLAVE", sim.hosts[1]["address"]]


def test_slave_local_session_serves_only_emergency_calls(pool):
    sim, master = pool
    local = connect(sim.hosts[1])
    local.slave_local_login_with_password(USER, PASSWORD)
    assert fails(local.xenapi.host.get_all) == \
        ["HOST_IS_SLAVE", sim.hosts[0]["address"]]
    local.xenapi.session.logout()  # XenAPI sends session.local_logout
    assert sim.calls("session.local_logout", host="xs02")


def test_slave_local_login_checks_credentials(pool):
    sim, master = pool
    local = connect(sim.hosts[1])
    details = fails(local.slave_local_login_with_password, USER, "bad")
    assert details[:2] == ["SESSION_AUTHENTICATION_FAILED", USER]


def test_emergency_transition_refused_with_ha(pool):
    sim, master = pool
    sim.set_ha(1)
    local = connect(sim.hosts[1])
    local.slave_local_login_with_password(USER, PASSWORD)
    assert fails(local.xenapi.pool.emergency_transition_to_master) == \
        ["HA_IS_ENABLED"]


# -- host.destroy ("host-forget") ---------------------------------------------

def test_host_destroy_of_a_live_host_is_host_is_live(pool):
    sim, master = pool
    slave = ref_of(master, sim.hosts[1])
    assert fails(master.xenapi.host.destroy, slave) == ["HOST_IS_LIVE", slave]
    me = ref_of(master, sim.hosts[0])
    assert fails(master.xenapi.host.destroy, me) == ["HOST_IS_LIVE", me]


def test_host_destroy_forgets_a_dead_host(pool):
    sim, master = pool
    slave = ref_of(master, sim.hosts[1])
    sim.set_offline(2)
    metrics = master.xenapi.host.get_metrics(slave)
    assert master.xenapi.host_metrics.get_live(metrics) is False
    assert master.xenapi.host.destroy(slave) == ""
    assert slave not in master.xenapi.host.get_all()
    assert len(master.xenapi.host.get_all()) == 2
