"""The classic topology in the simulator: a nova-compute VM on every host
(issue 12), and xapi's join/eject/VM power semantics around it."""

import json
import subprocess
import sys
import threading

import pytest
import XenAPI

from tests.simulator.sim_client import PASSWORD
from tests.simulator.sim_client import USER
from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login
from tests.simulator.sim_client import wait_for


@pytest.fixture
def sim(simulator):
    return simulator(hosts=3, compute_vms=True)


def vm_ref(session, host):
    return session.xenapi.VM.get_by_uuid(host["compute_vm_uuid"])


def halt_compute_vm(host):
    session = login(host)
    session.xenapi.VM.clean_shutdown(vm_ref(session, host))
    return session


def test_each_host_has_a_running_compute_vm_on_its_local_sr(sim):
    for host in sim.hosts:
        session = login(host)
        ref = vm_ref(session, host)
        vm = session.xenapi.VM.get_record(ref)
        assert vm["name_label"] == "nova-compute-%s" % host["name_label"]
        assert vm["power_state"] == "Running"
        assert vm["resident_on"] == session.xenapi.host.get_by_uuid(
            host["uuid"])
        vdi = session.xenapi.VBD.get_VDI(vm["VBDs"][0])
        sr = session.xenapi.VDI.get_SR(vdi)
        assert session.xenapi.SR.get_shared(sr) is False
        assert session.xenapi.SR.get_name_label(sr) == "Local storage"


def test_without_compute_vms_hosts_have_no_guest_and_no_uuid_key(simulator):
    sim = simulator(hosts=1)
    assert "compute_vm_uuid" not in sim.hosts[0]
    session = login(sim.hosts[0])
    guests = [vm for vm in session.xenapi.VM.get_all_records().values()
              if not vm["is_control_domain"]]
    assert guests == []


def test_join_with_the_compute_vm_running_is_refused(sim):
    session = login(sim.hosts[1])
    assert fails(session.xenapi.pool.join, sim.hosts[0]["address"], USER,
                 PASSWORD) == ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]


def test_join_with_the_compute_vm_halted_brings_it_into_the_pool(sim):
    joiner = sim.hosts[1]
    halt_compute_vm(joiner)
    master = join(sim, joiner, sim.hosts[0])
    ref = vm_ref(master, joiner)
    vm = master.xenapi.VM.get_record(ref)
    assert vm["power_state"] == "Halted"
    slave_ref = master.xenapi.host.get_by_uuid(joiner["uuid"])
    assert vm["affinity"] == slave_ref
    vdi = master.xenapi.VBD.get_VDI(vm["VBDs"][0])
    sr = master.xenapi.VDI.get_SR(vdi)
    pbds = master.xenapi.SR.get_PBDs(sr)
    assert [master.xenapi.PBD.get_host(p) for p in pbds] == [slave_ref]


def test_start_on_the_new_slave_runs_it_there(sim):
    joiner = sim.hosts[1]
    halt_compute_vm(joiner)
    master = join(sim, joiner, sim.hosts[0])
    slave_ref = master.xenapi.host.get_by_uuid(joiner["uuid"])
    master.xenapi.VM.start_on(vm_ref(master, joiner), slave_ref, False, False)
    assert sim.vm_state(joiner["compute_vm_uuid"])["power_state"] == \
        "Running"
    assert sim.vm_state(joiner["compute_vm_uuid"])["resident_on"] == \
        joiner["name_label"]


def test_start_on_the_master_is_refused_the_disk_is_on_the_slave(sim):
    joiner = sim.hosts[1]
    halt_compute_vm(joiner)
    master = join(sim, joiner, sim.hosts[0])
    ref = vm_ref(master, joiner)
    master_ref = master.xenapi.pool.get_master(
        master.xenapi.pool.get_all()[0])
    details = fails(master.xenapi.VM.start_on, ref, master_ref, False, False)
    assert details[0] == "VM_REQUIRES_SR"
    assert details[1] == ref


def test_start_on_a_slave_not_yet_live_is_host_not_live(simulator):
    sim = simulator(hosts=2, compute_vms=True, join_delay=1.5)
    joiner = sim.hosts[1]
    halt_compute_vm(joiner).xenapi.pool.join(sim.hosts[0]["address"], USER,
                                             PASSWORD)
    master = login(sim.hosts[0])
    slave_ref = master.xenapi.host.get_by_uuid(joiner["uuid"])
    assert fails(master.xenapi.VM.start_on, vm_ref(master, joiner),
                 slave_ref, False, False) == ["HOST_NOT_LIVE"]


def test_start_of_a_running_vm_is_bad_power_state(sim):
    session = login(sim.hosts[0])
    ref = vm_ref(session, sim.hosts[0])
    host_ref = session.xenapi.host.get_by_uuid(sim.hosts[0]["uuid"])
    assert fails(session.xenapi.VM.start_on, ref, host_ref, False,
                 False) == ["VM_BAD_POWER_STATE", ref, "halted", "running"]


def test_clean_shutdown_of_a_halted_vm_is_bad_power_state(sim):
    session = halt_compute_vm(sim.hosts[0])
    ref = vm_ref(session, sim.hosts[0])
    assert fails(session.xenapi.VM.clean_shutdown, ref) == \
        ["VM_BAD_POWER_STATE", ref, "running", "halted"]


def test_vm_start_picks_the_host_holding_its_disk(sim):
    joiner = sim.hosts[1]
    halt_compute_vm(joiner)
    master = join(sim, joiner, sim.hosts[0])
    master.xenapi.VM.start(vm_ref(master, joiner), False, False)
    assert sim.vm_state(joiner["compute_vm_uuid"])["resident_on"] == \
        joiner["name_label"]


def test_power_changes_are_vm_events(sim):
    session = login(sim.hosts[0])
    token = getattr(session.xenapi.event, "from")(["vm"], "", 0.0)["token"]
    ref = vm_ref(session, sim.hosts[0])
    session.xenapi.VM.clean_shutdown(ref)
    batch = getattr(session.xenapi.event, "from")(["vm"], token, 1.0)
    events = [e for e in batch["events"] if e["ref"] == ref]
    assert [e["operation"] for e in events] == ["mod"]
    assert events[0]["snapshot"]["power_state"] == "Halted"
    assert events[0]["snapshot"]["resident_on"] == "OpaqueRef:NULL"


def test_a_slow_guest_keeps_clean_shutdown_waiting(sim):
    host = sim.hosts[0]
    sim.set_clean_shutdown_delay(host["compute_vm_uuid"], 0.5)
    session = login(host)
    session.xenapi.VM.clean_shutdown(vm_ref(session, host))
    assert sim.vm_state(host["compute_vm_uuid"])["power_state"] == "Halted"


def test_hard_shutdown_cancels_a_pending_clean_shutdown(sim):
    host = sim.hosts[0]
    sim.set_clean_shutdown_delay(host["compute_vm_uuid"], 30)
    outcome = []

    def clean():
        session = login(host)
        try:
            session.xenapi.VM.clean_shutdown(vm_ref(session, host))
            outcome.append("returned")
        except XenAPI.Failure as exc:
            outcome.append(exc.details[0])
    thread = threading.Thread(target=clean)
    thread.start()
    session = login(host)
    ref = vm_ref(session, host)
    wait_for(lambda: session.xenapi.VM.get_current_operations(ref))
    session.xenapi.VM.hard_shutdown(ref)
    thread.join(10)
    assert outcome == ["TASK_CANCELLED"]
    assert session.xenapi.VM.get_power_state(ref) == "Halted"


def test_eject_with_the_compute_vm_running_is_refused(sim):
    joiner = sim.hosts[1]
    halt_compute_vm(joiner)
    master = join(sim, joiner, sim.hosts[0])
    slave_ref = master.xenapi.host.get_by_uuid(joiner["uuid"])
    master.xenapi.VM.start_on(vm_ref(master, joiner), slave_ref, False, False)
    assert fails(master.xenapi.pool.eject, slave_ref) == \
        ["OPERATION_NOT_ALLOWED", "VM resident on host"]


def test_eject_wipes_the_compute_vm_from_pool_and_host(sim):
    joiner = sim.hosts[1]
    uuid = joiner["compute_vm_uuid"]
    halt_compute_vm(joiner)
    master = join(sim, joiner, sim.hosts[0])
    master.xenapi.pool.eject(master.xenapi.host.get_by_uuid(joiner["uuid"]))
    assert fails(master.xenapi.VM.get_by_uuid, uuid) == \
        ["UUID_INVALID", "VM", uuid]
    wait_for(lambda: sim.role(2) == "master")
    alone = wait_for(lambda: _try_login(joiner))
    guests = [vm for vm in alone.xenapi.VM.get_all_records().values()
              if not vm["is_control_domain"]]
    assert guests == []
    assert sim.hosts[1]["compute_vm_uuid"] is None
    assert sim.vm_state(uuid) == {}


def _try_login(host):
    try:
        return login(host)
    except (OSError, XenAPI.Failure):
        return None


def test_cli_prints_compute_vm_uuid(simulator):
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolmgr.simulator.cli", "--hosts", "2",
         "--port", "0", "--address-base", "150", "--password", PASSWORD,
         "--compute-vms"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        hosts = [json.loads(proc.stdout.readline()) for _ in range(2)]
        for host in hosts:
            session = XenAPI.Session(host["url"])
            session.xenapi.login_with_password(USER, PASSWORD)
            ref = session.xenapi.VM.get_by_uuid(host["compute_vm_uuid"])
            assert session.xenapi.VM.get_name_label(ref) == \
                "nova-compute-%s" % host["hostname"]
    finally:
        proc.kill()
        proc.wait(5)
