"""host.get_vms_which_prevent_evacuation, host.evacuate and host.reboot
(reference/operations.md §2.1), through the real XenAPI client."""

import time

import pytest

from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import wait_for


@pytest.fixture
def pool(simulator):
    """xs01 master, xs02 and xs03 slaves, a shared SR; (sim, session)."""
    sim = simulator(hosts=3, reboot_delay=0.5, migrate_delay=0.05)
    join(sim, sim.hosts[1], sim.hosts[0])
    master = join(sim, sim.hosts[2], sim.hosts[0])
    sim.create_shared_sr("xs01", "nfs")
    return sim, master


def ref_of(session, host):
    return session.xenapi.host.get_by_uuid(host["uuid"])


def test_blockers_map_each_vm_to_xapis_code_and_params(pool):
    sim, master = pool
    xs02 = ref_of(master, sim.hosts[1])
    sim.create_running_vm("xs02", "web", 1024, "nfs")
    local = sim.create_running_vm("xs02", "local", 512, "Local storage")
    # It runs where it is (64 GiB), but no other member has room for it.
    huge = sim.create_running_vm("xs02", "huge", 40 << 10, "nfs")
    for other in ("xs01", "xs03"):
        sim.set_memory(other, 32 << 10)
    found = master.xenapi.host.get_vms_which_prevent_evacuation(xs02)
    local_ref = master.xenapi.VM.get_by_uuid(local)
    huge_ref = master.xenapi.VM.get_by_uuid(huge)
    assert set(found) == {local_ref, huge_ref}
    assert found[local_ref][0] == "VM_REQUIRES_SR"
    assert found[local_ref][1] == local_ref
    assert master.xenapi.SR.get_name_label(found[local_ref][2]) == \
        "Local storage"
    # [needed; available]: 32 GiB less dom0's 4 on the roomiest target.
    assert found[huge_ref] == ["HOST_NOT_ENOUGH_FREE_MEMORY",
                               str(40 << 30), str(28 << 30)]


def test_no_enabled_target_is_no_hosts_available_for_every_vm(pool):
    sim, master = pool
    web = sim.create_running_vm("xs02", "web", 1024, "nfs")
    for host in (sim.hosts[0], sim.hosts[2]):
        master.xenapi.host.disable(ref_of(master, host))
    found = master.xenapi.host.get_vms_which_prevent_evacuation(
        ref_of(master, sim.hosts[1]))
    assert found == {master.xenapi.VM.get_by_uuid(web):
                     ["NO_HOSTS_AVAILABLE"]}


def test_evacuate_raises_the_first_blocker_and_moves_nothing(pool):
    sim, master = pool
    xs02 = ref_of(master, sim.hosts[1])
    web = sim.create_running_vm("xs02", "web", 1024, "nfs")
    local = sim.create_running_vm("xs02", "local", 512, "Local storage")
    error = fails(master.xenapi.host.evacuate, xs02)
    assert error[:2] == ["VM_REQUIRES_SR",
                         master.xenapi.VM.get_by_uuid(local)]
    assert sim.vm_state(web)["resident_on"] == "xs02"
    assert fails(master.xenapi.host.assert_can_evacuate, xs02)[0] == \
        "CANNOT_EVACUATE_HOST"


def test_evacuate_moves_every_vm_to_other_enabled_members(pool):
    sim, master = pool
    xs02 = ref_of(master, sim.hosts[1])
    master.xenapi.host.disable(ref_of(master, sim.hosts[2]))
    vms = [sim.create_running_vm("xs02", "vm%d" % i, 1024, "nfs")
           for i in range(3)]
    master.xenapi.host.disable(xs02)
    started = time.monotonic()
    master.xenapi.host.evacuate(xs02)
    assert time.monotonic() - started >= 3 * 0.05
    assert {sim.vm_state(v)["resident_on"] for v in vms} == {"xs01"}
    assert master.xenapi.host.get_vms_which_prevent_evacuation(xs02) == {}


def test_reboot_needs_the_host_disabled_and_empty(pool):
    sim, master = pool
    xs02 = ref_of(master, sim.hosts[1])
    assert fails(master.xenapi.host.reboot, xs02) == ["HOST_NOT_DISABLED"]
    web = sim.create_running_vm("xs02", "web", 1024, "nfs")
    master.xenapi.host.disable(xs02)
    assert fails(master.xenapi.host.reboot, xs02) == [
        "HOST_IN_USE", xs02, "vm", master.xenapi.VM.get_by_uuid(web)]


def test_a_rebooting_member_is_not_live_then_back_disabled(pool):
    sim, master = pool
    xs02 = ref_of(master, sim.hosts[1])
    metrics = master.xenapi.host.get_metrics(xs02)
    before = float(master.xenapi.host.get_other_config(xs02)[
        "agent_start_time"])
    master.xenapi.host.disable(xs02)
    master.xenapi.host.reboot(xs02)
    wait_for(lambda: not master.xenapi.host_metrics.get_live(metrics))
    wait_for(lambda: master.xenapi.host_metrics.get_live(metrics),
             timeout=5)
    assert master.xenapi.host.get_enabled(xs02) is False
    assert float(master.xenapi.host.get_other_config(xs02)[
        "agent_start_time"]) > before
    assert sim.boot_count("xs02") == 1
    master.xenapi.host.enable(xs02)
    assert master.xenapi.host.get_enabled(xs02) is True


def test_a_reboot_that_hangs_never_comes_back(pool):
    sim, master = pool
    xs03 = ref_of(master, sim.hosts[2])
    metrics = master.xenapi.host.get_metrics(xs03)
    sim.set_reboot_hangs("xs03")
    master.xenapi.host.disable(xs03)
    master.xenapi.host.reboot(xs03)
    wait_for(lambda: not master.xenapi.host_metrics.get_live(metrics))
    time.sleep(1.0)
    assert not master.xenapi.host_metrics.get_live(metrics)
    assert sim.boot_count("xs03") == 0
