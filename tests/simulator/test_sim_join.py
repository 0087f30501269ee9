"""pool.join / pool.join_force: xapi's pre-join checks and the join itself
(reference/xapi.md §2.1, §2.2, §4)."""

import time

import pytest

from tests.simulator.sim_client import PASSWORD
from tests.simulator.sim_client import USER
from tests.simulator.sim_client import connect
from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login
from tests.simulator.sim_client import wait_for


@pytest.fixture
def sim(simulator):
    return simulator(hosts=3)


def join_error(sim, joiner=2, master=1, force=False):
    """ErrorDescription of pool.join(_force) of ``joiner`` to ``master``."""
    session = login(sim.hosts[joiner - 1])
    pool = session.xenapi.pool
    call = pool.join_force if force else pool.join
    return fails(call, sim.hosts[master - 1]["address"], USER, PASSWORD)


# -- each check with its exact code and params (§2.2) ------------------------

def test_join_refused_when_ha_enabled_on_joiner(sim):
    sim.set_ha(2)
    assert join_error(sim) == ["HA_IS_ENABLED"]


def test_join_refused_when_ha_enabled_on_the_distant_pool(sim):
    sim.set_ha(1)
    assert join_error(sim) == ["HA_IS_ENABLED"]


def test_host_cannot_join_itself(sim):
    assert join_error(sim, joiner=2, master=2) == \
        ["OPERATION_NOT_ALLOWED", "Host cannot become slave of itself"]


def test_pool_master_joining_its_own_address_is_already_in_a_pool(sim):
    join(sim, sim.hosts[1], sim.hosts[0])
    assert join_error(sim, joiner=1, master=1) == \
        ["OPERATION_NOT_ALLOWED", "Host is already part of a pool"]


def test_join_refused_when_joiner_is_master_of_other_hosts(sim):
    join(sim, sim.hosts[1], sim.hosts[0])
    assert join_error(sim, joiner=1, master=3) == \
        ["JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS"]


def test_join_refused_when_joining_host_runs_vms(sim):
    sim.create_running_vm(2)
    assert join_error(sim) == ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]


def test_halted_vms_do_not_block_join_and_move_to_the_master(sim):
    joiner = login(sim.hosts[1])
    joiner.xenapi.VM.create({"name_label": "halted-guest"})
    master = join(sim, sim.hosts[1], sim.hosts[0])
    vms = master.xenapi.VM.get_by_name_label("halted-guest")
    assert len(vms) == 1
    assert master.xenapi.VM.get_power_state(vms[0]) == "Halted"


def test_join_refused_when_platform_version_differs_even_with_force(sim):
    sim.set_software_version(2, platform_version="3.2.0")
    assert join_error(sim) == ["HOSTS_NOT_COMPATIBLE"]
    assert join_error(sim, force=True) == ["HOSTS_NOT_COMPATIBLE"]


def test_join_refused_when_product_brand_differs(sim):
    sim.set_software_version(2, product_brand="Citrix Hypervisor")
    assert join_error(sim) == ["HOSTS_NOT_COMPATIBLE"]


def test_join_refused_when_xapi_version_differs(sim):
    sim.set_software_version(2, xapi="23.1")
    assert join_error(sim) == ["HOSTS_NOT_HOMOGENEOUS",
                               "Software version differs"]


def test_build_number_difference_does_not_block_join(sim):
    sim.set_software_version(2, build_number="other-build")
    join(sim, sim.hosts[1], sim.hosts[0])
    assert sim.role(2) == "slave"


def test_join_refused_when_cpu_vendor_differs(sim):
    sim.set_cpu_vendor(2, "AuthenticAMD")
    assert join_error(sim) == ["HOSTS_NOT_HOMOGENEOUS", "CPUs differ"]


def test_join_force_skips_the_homogeneity_check(sim):
    sim.set_cpu_vendor(2, "AuthenticAMD")
    sim.set_software_version(2, xapi="23.1")
    join(sim, sim.hosts[1], sim.hosts[0], force=True)
    assert sim.master_of(2) == "xs01"


def test_join_refused_when_joiner_has_a_shared_sr(sim):
    sim.create_shared_sr(2, name_label="NFS-joiner")
    assert join_error(sim) == ["JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS"]


def test_join_refused_when_joiner_has_bonds(sim):
    sim.add_bond(2)
    assert join_error(sim) == ["POOL_JOINING_HOST_HAS_BONDS"]


def test_join_refused_when_joiner_has_tunnels(sim):
    sim.add_tunnel(2)
    assert join_error(sim) == ["POOL_JOINING_HOST_HAS_TUNNELS"]


def test_join_refused_when_joiner_has_non_management_vlans(sim):
    sim.add_vlan(2, 42)
    assert join_error(sim) == ["POOL_JOINING_HOST_HAS_NON_MANAGEMENT_VLANS"]


def test_join_refused_when_management_vlans_differ(sim):
    sim.set_management_vlan(2, 100)
    assert join_error(sim) == \
        ["POOL_JOINING_HOST_MANAGEMENT_VLAN_DOES_NOT_MATCH", "100", "-1"]


def test_join_refused_when_editions_differ(sim):
    sim.set_edition(2, "xenserver-standard")
    assert join_error(sim) == ["LICENSE_HOST_POOL_MISMATCH",
                               'host edition = "xenserver-standard"',
                               'pool edition = "xenserver-premium"']


def test_join_refused_when_network_backends_differ(sim):
    sim.set_software_version(2, network_backend="bridge")
    assert join_error(sim) == ["OPERATION_NOT_ALLOWED",
                               "Network backends differ"]


def test_join_refused_when_api_versions_differ(sim):
    sim.set_api_version(2, 2, 20)
    assert join_error(sim) == ["POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION",
                               "2.20", "2.21"]


def test_join_refused_when_db_schemas_differ(sim):
    sim.set_software_version(2, db_schema="5.800")
    assert join_error(sim) == ["POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA",
                               "5.800", "5.909"]


# -- order: the first failing check wins --------------------------------------

def test_first_failing_check_in_xapi_order_is_reported(sim):
    # violations of #9 (running VM), #13 (CPU vendor), #15 (bond),
    # #21 (edition) and #23 (API version) at once
    sim.set_api_version(2, 2, 20)
    sim.set_edition(2, "xenserver-standard")
    sim.add_bond(2)
    sim.set_cpu_vendor(2, "AuthenticAMD")
    sim.create_running_vm(2, "busy")
    assert join_error(sim) == ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]
    joiner = login(sim.hosts[1])
    vm = joiner.xenapi.VM.get_by_name_label("busy")[0]
    joiner.xenapi.VM.hard_shutdown(vm)
    assert join_error(sim) == ["HOSTS_NOT_HOMOGENEOUS", "CPUs differ"]
    # join_force skips #13 only: the next violation in order shows
    assert join_error(sim, force=True) == ["POOL_JOINING_HOST_HAS_BONDS"]


def test_ha_is_checked_before_self_join_and_compatibility(sim):
    sim.set_ha(2)
    sim.set_software_version(2, platform_version="1.0")
    assert join_error(sim, joiner=2, master=2) == ["HA_IS_ENABLED"]


def test_compatibility_is_checked_before_homogeneity(sim):
    sim.set_cpu_vendor(2, "AuthenticAMD")
    sim.set_software_version(2, platform_version="1.0")
    assert join_error(sim) == ["HOSTS_NOT_COMPATIBLE"]


def test_a_refused_join_changes_nothing(sim):
    sim.add_bond(2)
    join_error(sim)
    assert sim.role(2) == "master"
    master = login(sim.hosts[0])
    assert len(master.xenapi.host.get_all()) == 1
    assert login(sim.hosts[1]).xenapi.host.get_all()


# -- reaching the master (§2.1 step 2) ----------------------------------------

def test_join_with_wrong_credentials_fails_authentication(sim):
    session = login(sim.hosts[1])
    details = fails(session.xenapi.pool.join, sim.hosts[0]["address"], USER,
                    "wrong-password")
    assert details[:2] == ["SESSION_AUTHENTICATION_FAILED", USER]
    assert sim.role(2) == "master"


def test_join_to_a_slave_address_answers_host_is_slave(sim):
    join(sim, sim.hosts[1], sim.hosts[0])
    session = login(sim.hosts[2])
    details = fails(session.xenapi.pool.join, sim.hosts[1]["address"], USER,
                    PASSWORD)
    assert details == ["HOST_IS_SLAVE", sim.hosts[0]["address"]]


def test_join_to_an_unknown_address_fails_to_connect(sim):
    session = login(sim.hosts[1])
    details = fails(session.xenapi.pool.join, "127.254.254.254", USER,
                    PASSWORD)
    assert details == ["JOINING_HOST_CONNECTION_FAILED"]


# -- the join itself ----------------------------------------------------------

def test_join_restarts_joiner_then_it_is_a_slave_of_the_master(simulator):
    sim = simulator(hosts=2, join_delay=0.8)
    master, joiner = sim.hosts
    session = login(joiner)
    started = time.monotonic()
    assert session.xenapi.pool.join(master["address"], USER, PASSWORD) == ""

    def refused():
        try:
            connect(joiner).xenapi.login_with_password(USER, PASSWORD)
        except ConnectionRefusedError:
            return True
        except Exception:  # noqa: BLE001 - still shutting down
            return False
        return False
    wait_for(refused, timeout=0.7, interval=0.01)

    def slave_answer():
        try:
            connect(joiner).xenapi.login_with_password(USER, PASSWORD)
        except OSError:
            return None
        except Exception as exc:  # noqa: BLE001 - XenAPI.Failure expected
            return exc.details
        return ["logged in"]
    details = wait_for(slave_answer, timeout=5)
    assert details == ["HOST_IS_SLAVE", master["address"]]
    assert time.monotonic() - started >= 0.7


def test_master_lists_the_joined_host_live_with_the_same_uuid(sim):
    master_session = join(sim, sim.hosts[1], sim.hosts[0])
    records = master_session.xenapi.host.get_all_records()
    by_uuid = {rec["uuid"]: ref for ref, rec in records.items()}
    assert set(by_uuid) == {sim.hosts[0]["uuid"], sim.hosts[1]["uuid"]}
    ref = by_uuid[sim.hosts[1]["uuid"]]
    metrics = master_session.xenapi.host.get_metrics(ref)
    assert master_session.xenapi.host_metrics.get_live(metrics) is True
    assert records[ref]["name_label"] == "xs02"
    assert sim.pool_uuid(2) == sim.pool_uuid(1)


def test_joined_host_gets_a_plugged_pbd_for_the_pools_shared_sr(sim):
    sim.create_shared_sr(1, name_label="NFS", device_config={
        "server": "nfs.example", "serverpath": "/export/pool"})
    master_session = join(sim, sim.hosts[1], sim.hosts[0])
    sr = master_session.xenapi.SR.get_by_name_label("NFS")[0]
    joiner_ref = master_session.xenapi.host.get_by_uuid(sim.hosts[1]["uuid"])
    pbds = [master_session.xenapi.PBD.get_record(p)
            for p in master_session.xenapi.SR.get_PBDs(sr)]
    mine = [p for p in pbds if p["host"] == joiner_ref]
    assert len(pbds) == 2 and len(mine) == 1
    assert mine[0]["currently_attached"] is True
    assert mine[0]["device_config"] == {"server": "nfs.example",
                                        "serverpath": "/export/pool"}
    master_pbd = next(p for p in pbds if p["host"] != joiner_ref)
    assert master_pbd["device_config"]["SRmaster"] == "true"


def test_joiners_local_sr_is_known_to_the_master_as_not_shared(sim):
    master_session = join(sim, sim.hosts[1], sim.hosts[0])
    joiner_ref = master_session.xenapi.host.get_by_uuid(sim.hosts[1]["uuid"])
    local = [master_session.xenapi.PBD.get_SR(p)
             for p in master_session.xenapi.host.get_PBDs(joiner_ref)]
    assert len(local) == 1
    assert master_session.xenapi.SR.get_shared(local[0]) is False
    assert master_session.xenapi.SR.get_type(local[0]) == "ext"


def test_pbd_plug_failure_leaves_the_new_slaves_pbd_unplugged(sim):
    sim.create_shared_sr(1, name_label="NFS")
    sim.set_pbd_plug_failure(2, "NFS")
    master_session = join(sim, sim.hosts[1], sim.hosts[0])
    joiner_ref = master_session.xenapi.host.get_by_uuid(sim.hosts[1]["uuid"])
    sr = master_session.xenapi.SR.get_by_name_label("NFS")[0]
    pbd = next(p for p in master_session.xenapi.SR.get_PBDs(sr)
               if master_session.xenapi.PBD.get_host(p) == joiner_ref)
    assert master_session.xenapi.PBD.get_currently_attached(pbd) is False


def test_three_hosts_join_one_pool(sim):
    join(sim, sim.hosts[1], sim.hosts[0])
    master_session = join(sim, sim.hosts[2], sim.hosts[0])
    assert len(master_session.xenapi.host.get_all()) == 3
    assert [sim.role(i) for i in (1, 2, 3)] == ["master", "slave", "slave"]
    pool = master_session.xenapi.pool.get_all()[0]
    assert master_session.xenapi.host.get_uuid(
        master_session.xenapi.pool.get_master(pool)) == sim.hosts[0]["uuid"]
