"""host register --compute-vm, host show/list/check with a compute VM
(issue 12): the real poolmgr-manage, MariaDB and the simulator."""

import json
import os
import subprocess
import sys

import pytest

from tests.simulator.sim_client import login

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")
PASSWORD = "sim-secret"


@pytest.fixture
def config_file(tmp_path, mysql_url):
    path = tmp_path / "poolmgr.conf"
    path.write_text("[database]\nconnection = %s\n[xenserver]\n"
                    "connection_password = %s\ncall_timeout = 5\n"
                    % (mysql_url, PASSWORD))
    return str(path)


@pytest.fixture
def sim(simulator):
    return simulator(hosts=2, compute_vms=True)


def manage(config_file, *args):
    return subprocess.run([BIN, "--config-file", config_file] + list(args),
                          capture_output=True, text=True, timeout=120)


def show(config_file, name):
    result = manage(config_file, "host", "show", name, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_register_with_a_uuid_is_shown_and_listed(config_file, sim):
    host = sim.hosts[0]
    result = manage(config_file, "host", "register", "compute1", host["url"],
                    "--compute-vm", host["compute_vm_uuid"])
    assert result.returncode == 0, result.stderr
    assert show(config_file, "compute1")["compute_vm_uuid"] == \
        host["compute_vm_uuid"]
    listed = json.loads(manage(config_file, "host", "list", "--format",
                               "json").stdout)
    assert [h["compute_vm_uuid"] for h in listed] == [host["compute_vm_uuid"]]


def test_register_without_the_option_is_independent_compute(config_file,
                                                            sim):
    result = manage(config_file, "host", "register", "compute1",
                    sim.hosts[0]["url"])
    assert result.returncode == 0, result.stderr
    assert show(config_file, "compute1")["compute_vm_uuid"] is None
    assert "independent compute" in result.stdout


def test_reregister_without_the_option_keeps_it_and_none_clears_it(
        config_file, sim):
    host = sim.hosts[0]
    manage(config_file, "host", "register", "compute1", host["url"],
           "--compute-vm", host["compute_vm_uuid"])
    manage(config_file, "host", "register", "compute1", host["url"])
    assert show(config_file, "compute1")["compute_vm_uuid"] == \
        host["compute_vm_uuid"]
    manage(config_file, "host", "register", "compute1", host["url"],
           "--compute-vm", "none")
    assert show(config_file, "compute1")["compute_vm_uuid"] is None


def test_auto_picks_the_nova_compute_vm_of_the_host(config_file, sim):
    host = sim.hosts[1]
    sim.create_running_vm(2, "web-1")
    result = manage(config_file, "host", "register", "compute2", host["url"],
                    "--compute-vm", "auto")
    assert result.returncode == 0, result.stderr
    assert show(config_file, "compute2")["compute_vm_uuid"] == \
        host["compute_vm_uuid"]


def test_auto_with_two_candidates_fails_listing_them(config_file,
                                                     simulator):
    sim = simulator(hosts=1)
    first = sim.create_running_vm(1, "a")
    second = sim.create_running_vm(1, "b")
    result = manage(config_file, "host", "register", "compute1",
                    sim.hosts[0]["url"], "--compute-vm", "auto")
    assert result.returncode == 1
    assert first in result.stderr and second in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert manage(config_file, "host", "show", "compute1").returncode == 1


def test_a_malformed_uuid_is_a_usage_error(config_file, sim):
    result = manage(config_file, "host", "register", "compute1",
                    sim.hosts[0]["url"], "--compute-vm", "not-a-uuid")
    assert result.returncode == 2
    assert "--compute-vm" in result.stderr


def test_check_says_the_compute_vm_runs_on_the_host(config_file, sim):
    host = sim.hosts[0]
    manage(config_file, "host", "register", "compute1", host["url"],
           "--compute-vm", host["compute_vm_uuid"])
    result = manage(config_file, "host", "check", "compute1", "--format",
                    "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["compute_vm_ok"] is True
    assert report["compute_vm"] == "running on this host"


def test_check_fails_when_the_compute_vm_is_halted(config_file, sim):
    host = sim.hosts[0]
    manage(config_file, "host", "register", "compute1", host["url"],
           "--compute-vm", host["compute_vm_uuid"])
    session = login(host)
    session.xenapi.VM.clean_shutdown(
        session.xenapi.VM.get_by_uuid(host["compute_vm_uuid"]))
    result = manage(config_file, "host", "check", "compute1", "--format",
                    "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["compute_vm_ok"] is False
    assert report["compute_vm_power_state"] == "Halted"


def test_check_fails_when_xapi_has_no_such_vm(config_file, sim):
    manage(config_file, "host", "register", "compute1", sim.hosts[0]["url"],
           "--compute-vm", "0b5e4a3c-0000-4000-8000-000000000001")
    result = manage(config_file, "host", "check", "compute1", "--format",
                    "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["compute_vm"].startswith("missing")


def test_check_of_a_pool_member_reads_its_compute_vm_on_the_master(
        config_file, sim):
    from tests.simulator.sim_client import join
    host = sim.hosts[1]
    alone = login(host)
    alone.xenapi.VM.clean_shutdown(
        alone.xenapi.VM.get_by_uuid(host["compute_vm_uuid"]))
    master = join(sim, host, sim.hosts[0])
    master.xenapi.VM.start_on(
        master.xenapi.VM.get_by_uuid(host["compute_vm_uuid"]),
        master.xenapi.host.get_by_uuid(host["uuid"]), False, False)
    manage(config_file, "host", "register", "compute2", host["url"],
           "--compute-vm", host["compute_vm_uuid"])
    result = manage(config_file, "host", "check", "compute2", "--format",
                    "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["role"] == "slave"
    assert report["compute_vm"] == "running on this host"
