"""Templates, clones and live migration, through the real XenAPI client."""

import threading
import time

import XenAPI

from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login


def pool_with_template(simulator, hosts=3, **template):
    """A pool of ``hosts`` with a shared NFS SR and a template "tpl" on it;
    returns (sim, master session, {host name: host ref})."""
    sim = simulator(hosts=hosts)
    for joiner in sim.hosts[1:]:
        master = join(sim, joiner, sim.hosts[0])
    if hosts == 1:
        master = login(sim.hosts[0])
    sim.create_shared_sr(1, "NFS")
    sim.add_template(1, "tpl", **template)
    refs = {rec["name_label"]: ref for ref, rec in
            master.xenapi.host.get_all_records().items()}
    return sim, master, refs


def install(master, name="canary"):
    """xe vm-install for a template on shared storage: clone, provision."""
    template = master.xenapi.VM.get_by_name_label("tpl")[0]
    vm = master.xenapi.VM.clone(template, name)
    master.xenapi.VM.provision(vm)
    return vm


def started(master, refs, on="xs01"):
    vm = install(master)
    master.xenapi.VM.start_on(vm, refs[on], False, False)
    return vm


def test_template_clone_keeps_the_disk_on_the_shared_sr(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=2)
    template = master.xenapi.VM.get_by_name_label("tpl")[0]
    assert master.xenapi.VM.get_is_a_template(template) is True
    vm = master.xenapi.VM.clone(template, "canary")
    assert master.xenapi.VM.get_is_a_template(vm) is True
    master.xenapi.VM.provision(vm)
    assert master.xenapi.VM.get_is_a_template(vm) is False
    (vbd,) = master.xenapi.VM.get_VBDs(vm)
    vdi = master.xenapi.VBD.get_VDI(vbd)
    (template_vbd,) = master.xenapi.VM.get_VBDs(template)
    assert vdi != master.xenapi.VBD.get_VDI(template_vbd)
    sr = master.xenapi.VDI.get_SR(vdi)
    assert master.xenapi.SR.get_name_label(sr) == "NFS"


def test_clone_of_a_running_vm_is_refused(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=1)
    vm = started(master, refs)
    assert fails(master.xenapi.VM.clone, vm, "again") == [
        "VM_BAD_POWER_STATE", vm, "halted", "running"]


def test_pool_migrate_moves_the_vm_after_the_delay(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=2)
    vm = started(master, refs)
    sim.set_migrate_delay(0.3)
    began = time.monotonic()
    master.xenapi.VM.pool_migrate(vm, refs["xs02"], {"live": "true"})
    assert time.monotonic() - began >= 0.3
    assert master.xenapi.VM.get_resident_on(vm) == refs["xs02"]
    assert master.xenapi.VM.get_power_state(vm) == "Running"
    assert master.xenapi.VM.get_current_operations(vm) == {}


def test_a_migration_in_flight_refuses_another(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=3)
    vm = started(master, refs)
    sim.set_migrate_delay(0.5)
    mover = threading.Thread(target=lambda: login(sim.hosts[0]).xenapi.VM.
                             pool_migrate(vm, refs["xs02"], {"live": "true"}))
    mover.start()
    time.sleep(0.15)
    try:
        assert list(master.xenapi.VM.get_current_operations(vm).values()) \
            == ["pool_migrate"]
        assert fails(master.xenapi.VM.pool_migrate, vm, refs["xs03"],
                     {"live": "true"}) == [
            "OTHER_OPERATION_IN_PROGRESS", "VM", vm]
    finally:
        mover.join()
    assert master.xenapi.VM.get_resident_on(vm) == refs["xs02"]


def test_pool_migrate_of_a_halted_vm_is_vm_bad_power_state(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=2)
    vm = install(master)
    assert fails(master.xenapi.VM.pool_migrate, vm, refs["xs02"],
                 {"live": "true"}) == [
        "VM_BAD_POWER_STATE", vm, "running", "halted"]


def test_pool_migrate_of_a_template_is_vm_is_template(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=2)
    template = master.xenapi.VM.get_by_name_label("tpl")[0]
    assert fails(master.xenapi.VM.pool_migrate, template, refs["xs02"],
                 {}) == ["VM_IS_TEMPLATE", template]


def test_target_without_the_sr_attached_is_vm_requires_sr(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=2)
    vm = started(master, refs)
    sim.unplug_pbd("xs02", "NFS")
    sr = master.xenapi.SR.get_by_name_label("NFS")[0]
    expected = ["VM_REQUIRES_SR", vm, sr]
    assert fails(master.xenapi.VM.assert_can_boot_here, vm,
                 refs["xs02"]) == expected
    assert fails(master.xenapi.VM.pool_migrate, vm, refs["xs02"],
                 {"live": "true"}) == expected
    assert master.xenapi.VM.get_resident_on(vm) == refs["xs01"]


def test_target_without_memory_is_host_not_enough_free_memory(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=2,
                                           memory=512 << 20)
    vm = started(master, refs)
    sim.set_memory_free("xs02", 100 << 20)
    expected = ["HOST_NOT_ENOUGH_FREE_MEMORY", str(512 << 20),
                str(100 << 20)]
    assert fails(master.xenapi.VM.assert_can_boot_here, vm,
                 refs["xs02"]) == expected
    assert fails(master.xenapi.VM.pool_migrate, vm, refs["xs02"],
                 {"live": "true"}) == expected


def test_guests_resident_on_a_host_use_its_memory(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=2,
                                           memory=512 << 20)
    vm = started(master, refs, on="xs02")
    sim.set_memory_free("xs02", 700 << 20)
    other = install(master, "second")
    assert fails(master.xenapi.VM.assert_can_boot_here, other,
                 refs["xs02"]) == [
        "HOST_NOT_ENOUGH_FREE_MEMORY", str(512 << 20), str(188 << 20)]
    master.xenapi.VM.hard_shutdown(vm)
    assert master.xenapi.VM.assert_can_boot_here(other, refs["xs02"]) == ""


def test_disabled_or_offline_target_is_refused(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=3)
    vm = started(master, refs)
    master.xenapi.host.disable(refs["xs02"])
    assert fails(master.xenapi.VM.assert_can_boot_here, vm,
                 refs["xs02"]) == ["HOST_DISABLED", refs["xs02"]]
    sim.set_offline("xs03")
    assert fails(master.xenapi.VM.pool_migrate, vm, refs["xs03"],
                 {"live": "true"}) == ["HOST_NOT_LIVE"]


def test_destroy_takes_the_vbds_and_vdi_destroy_the_disks(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=1)
    vm = started(master, refs)
    (vbd,) = master.xenapi.VM.get_VBDs(vm)
    vdi = master.xenapi.VBD.get_VDI(vbd)
    assert fails(master.xenapi.VDI.destroy, vdi) == [
        "VDI_IN_USE", vdi, "destroy"]
    master.xenapi.VM.hard_shutdown(vm)
    master.xenapi.VDI.destroy(vdi)
    master.xenapi.VM.destroy(vm)
    assert vdi not in master.xenapi.VDI.get_all()
    assert vbd not in master.xenapi.VBD.get_all()
    assert sim.vms_named(1, "canary") == []
    assert len(sim.vms_named(1, "tpl")) == 1


def test_migration_controls_answer_over_xml_rpc(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=1)
    control = XenAPI.xmlrpclib.ServerProxy(sim.hosts[0]["url"])
    uuid = control.sim.add_template("xs01", "other-tpl")["Value"]
    assert control.sim.set_migrate_delay(0.1)["Status"] == "Success"
    (found,) = control.sim.vms_named("xs01", "other-tpl")["Value"]
    assert found["uuid"] == uuid and found["is_a_template"] is True


def test_vm_destroy_takes_its_vbds_and_leaves_its_vdis(simulator):
    sim, master, refs = pool_with_template(simulator, hosts=1)
    vm = install(master)
    (vbd,) = master.xenapi.VM.get_VBDs(vm)
    vdi = master.xenapi.VBD.get_VDI(vbd)
    master.xenapi.VM.destroy(vm)
    assert vbd not in master.xenapi.VBD.get_all()
    assert vdi in master.xenapi.VDI.get_all()
    assert master.xenapi.VDI.get_VBDs(vdi) == []
