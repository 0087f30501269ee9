"""SR, PBD and VM calls: what a pool's storage and guests look like."""

from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login

NFS = {"server": "nfs.example", "serverpath": "/export"}


def create_sr(session, shared=True, name="NFS"):
    host = session.xenapi.pool.get_master(session.xenapi.pool.get_all()[0])
    return session.xenapi.SR.create(host, NFS, "0", name, "", "nfs", "user",
                                    shared, {})


def test_shared_sr_create_plugs_a_pbd_on_every_member(simulator):
    sim = simulator(hosts=3)
    join(sim, sim.hosts[1], sim.hosts[0])
    master = join(sim, sim.hosts[2], sim.hosts[0])
    sr = create_sr(master)
    record = master.xenapi.SR.get_record(sr)
    assert record["shared"] is True and record["type"] == "nfs"
    pbds = [master.xenapi.PBD.get_record(p) for p in record["PBDs"]]
    assert sorted(p["host"] for p in pbds) == \
        sorted(master.xenapi.host.get_all())
    assert all(p["currently_attached"] for p in pbds)
    assert all(p["device_config"]["server"] == "nfs.example" for p in pbds)


def test_non_shared_sr_create_plugs_only_on_the_given_host(simulator):
    sim = simulator(hosts=2)
    master = join(sim, sim.hosts[1], sim.hosts[0])
    sr = create_sr(master, shared=False, name="local-nfs")
    assert len(master.xenapi.SR.get_PBDs(sr)) == 1


def test_shared_sr_create_survives_a_member_plug_failure(simulator):
    sim = simulator(hosts=2)
    master = join(sim, sim.hosts[1], sim.hosts[0])
    sim.set_pbd_plug_failure("xs02", code="SR_BACKEND_FAILURE_73")
    sr = create_sr(master)
    attached = {master.xenapi.PBD.get_host(p):
                master.xenapi.PBD.get_currently_attached(p)
                for p in master.xenapi.SR.get_PBDs(sr)}
    slave = master.xenapi.host.get_by_uuid(sim.hosts[1]["uuid"])
    assert attached[slave] is False
    assert list(attached.values()).count(True) == 1


def test_plugging_an_attached_pbd_is_device_already_attached(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    pbd = session.xenapi.SR.get_PBDs(create_sr(session))[0]
    assert fails(session.xenapi.PBD.plug, pbd) == \
        ["DEVICE_ALREADY_ATTACHED", pbd]


def test_unplugging_a_detached_pbd_is_device_already_detached(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    pbd = session.xenapi.SR.get_PBDs(create_sr(session))[0]
    session.xenapi.PBD.unplug(pbd)
    assert fails(session.xenapi.PBD.unplug, pbd) == \
        ["DEVICE_ALREADY_DETACHED", pbd]


def test_pbd_create_plug_unplug_destroy_round_trip(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    host = session.xenapi.host.get_all()[0]
    sr = session.xenapi.SR.introduce("5f0c6a1e-0000-4000-8000-000000000001",
                                     "ISO", "", "iso", "iso", False, {})
    assert session.xenapi.SR.get_uuid(sr) == \
        "5f0c6a1e-0000-4000-8000-000000000001"
    pbd = session.xenapi.PBD.create({"host": host, "SR": sr,
                                     "device_config": {"location": "/iso"},
                                     "other_config": {}})
    assert session.xenapi.PBD.get_currently_attached(pbd) is False
    session.xenapi.PBD.plug(pbd)
    assert session.xenapi.PBD.get_currently_attached(pbd) is True
    assert fails(session.xenapi.PBD.destroy, pbd) == \
        ["OPERATION_NOT_ALLOWED", "PBD is currently attached"]
    session.xenapi.PBD.unplug(pbd)
    session.xenapi.PBD.destroy(pbd)
    assert session.xenapi.SR.get_PBDs(sr) == []
    session.xenapi.SR.forget(sr)
    assert fails(session.xenapi.SR.get_record, sr) == \
        ["HANDLE_INVALID", "SR", sr]


def test_pool_default_sr_and_name_label_are_settable(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    pool = session.xenapi.pool.get_all()[0]
    sr = create_sr(session)
    session.xenapi.pool.set_default_SR(pool, sr)
    session.xenapi.pool.set_name_label(pool, "pool-a")
    record = session.xenapi.pool.get_record(pool)
    assert (record["default_SR"], record["name_label"]) == (sr, "pool-a")
    bad = "OpaqueRef:00000000-0000-0000-0000-00000000000f"
    assert fails(session.xenapi.pool.set_default_SR, pool, bad) == \
        ["HANDLE_INVALID", "SR", bad]


def test_pool_record_has_xapi_field_names(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    record = session.xenapi.pool.get_record(session.xenapi.pool.get_all()[0])
    for field in ("uuid", "name_label", "master", "default_SR",
                  "ha_enabled", "cpu_info", "other_config"):
        assert field in record
    assert record["ha_enabled"] is False


def test_vm_lifecycle_create_start_on_and_shutdowns(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    host = session.xenapi.host.get_all()[0]
    vm = session.xenapi.VM.create({
        "name_label": "web", "name_description": "", "user_version": "1",
        "is_a_template": False, "affinity": "OpaqueRef:NULL",
        "memory_static_max": "1073741824", "memory_dynamic_max": "1073741824",
        "memory_dynamic_min": "1073741824", "memory_static_min": "1073741824",
        "VCPUs_params": {}, "VCPUs_max": "1", "VCPUs_at_startup": "1",
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "restart", "PV_bootloader": "",
        "PV_kernel": "", "PV_ramdisk": "", "PV_args": "",
        "PV_bootloader_args": "", "PV_legacy_args": "",
        "HVM_boot_policy": "BIOS order", "HVM_boot_params": {},
        "platform": {}, "PCI_bus": "", "other_config": {},
        "recommendations": ""})
    assert session.xenapi.VM.get_power_state(vm) == "Halted"
    assert session.xenapi.VM.get_VCPUs_max(vm) == "1"
    session.xenapi.VM.start_on(vm, host, False, False)
    assert session.xenapi.VM.get_resident_on(vm) == host
    assert vm in session.xenapi.host.get_resident_VMs(host)
    assert fails(session.xenapi.VM.start, vm, False, False)[0] == \
        "VM_BAD_POWER_STATE"
    session.xenapi.VM.clean_shutdown(vm)
    assert session.xenapi.VM.get_power_state(vm) == "Halted"
    session.xenapi.VM.start(vm, False, False)
    assert session.xenapi.VM.get_power_state(vm) == "Running"
    session.xenapi.VM.hard_shutdown(vm)
    assert session.xenapi.VM.get_resident_on(vm) == "OpaqueRef:NULL"


def test_control_domain_cannot_be_shut_down(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    host = session.xenapi.host.get_all()[0]
    dom0 = session.xenapi.host.get_control_domain(host)
    assert session.xenapi.VM.get_is_control_domain(dom0) is True
    assert fails(session.xenapi.VM.clean_shutdown, dom0)[0] == \
        "OPERATION_NOT_ALLOWED"


def test_create_shared_sr_helper_is_sr_create_shared(simulator):
    sim = simulator(hosts=1)
    uuid = sim.create_shared_sr("xs01", name_label="NFS-A", type="nfs")
    session = login(sim.hosts[0])
    sr = session.xenapi.SR.get_by_uuid(uuid)
    assert session.xenapi.SR.get_shared(sr) is True
    assert session.xenapi.SR.get_name_label(sr) == "NFS-A"
    assert sim.calls(method="SR.create") == []  # set-up is not a client call
