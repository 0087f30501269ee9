"""poolmgr-xapi-sim as operators run it: JSON lines, SIGTERM, usage errors."""

import json
import signal
import subprocess
import sys

import pytest
import XenAPI

PASSWORD = "cli-secret"


def spawn(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "poolmgr.simulator.cli"] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def running():
    procs = []

    def start(*args):
        proc = spawn(*args)
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


def read_hosts(proc, count):
    return [json.loads(proc.stdout.readline()) for _ in range(count)]


def test_prints_one_json_line_per_host_once_all_listen(running):
    proc = running("--hosts", "3", "--port", "0", "--address-base", "40",
                   "--password", PASSWORD, "--join-delay", "0.2")
    hosts = read_hosts(proc, 3)
    assert [h["name_label"] for h in hosts] == ["xs01", "xs02", "xs03"]
    assert [h["hostname"] for h in hosts] == ["xs01", "xs02", "xs03"]
    assert [h["address"] for h in hosts] == \
        ["127.0.0.41", "127.0.0.42", "127.0.0.43"]
    for host in hosts:
        assert set(host) == {"name_label", "hostname", "uuid", "address",
                             "url"}
        assert host["url"].startswith("http://%s:" % host["address"])
        session = XenAPI.Session(host["url"])
        session.xenapi.login_with_password("root", PASSWORD)
        ref = session.xenapi.host.get_by_uuid(host["uuid"])
        assert session.xenapi.host.get_name_label(ref) == host["name_label"]


def test_sigterm_exits_zero(running):
    proc = running("--hosts", "1", "--port", "0", "--password", PASSWORD)
    read_hosts(proc, 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_sigint_exits_zero(running):
    proc = running("--hosts", "1", "--port", "0")
    read_hosts(proc, 1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def test_password_is_never_printed(running):
    proc = running("--hosts", "2", "--port", "0", "--password", PASSWORD)
    read_hosts(proc, 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert PASSWORD not in out and PASSWORD not in err


@pytest.mark.parametrize("args", [["--hosts", "0"], ["--hosts", "x"],
                                  ["--port", "70000"], ["--bogus"],
                                  ["--join-delay", "-1"]])
def test_bad_arguments_exit_2_with_usage(args):
    proc = spawn(*args)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "usage: poolmgr-xapi-sim" in err
    assert out == ""


def test_port_in_use_exits_1_with_a_message(running):
    first = running("--hosts", "1", "--port", "0", "--address-base", "60")
    port = read_hosts(first, 1)[0]["url"].rsplit(":", 1)[1].strip("/")
    second = spawn("--hosts", "1", "--port", port, "--address-base", "60")
    out, err = second.communicate(timeout=10)
    assert second.returncode == 1
    assert "cannot listen" in err


def test_password_never_shows_in_the_process_table(running):
    proc = running("--hosts", "1", "--port", "0", "--address-base", "60",
                   "--password", PASSWORD)
    read_hosts(proc, 1)
    args = subprocess.run(["ps", "-o", "args=", "-p", str(proc.pid)],
                          capture_output=True, text=True).stdout
    assert "--password ***" in args
    assert PASSWORD not in args


def test_password_from_the_environment(tmp_path):
    import os
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolmgr.simulator.cli", "--hosts", "1",
         "--port", "0", "--address-base", "61"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, POOLMGR_SIM_PASSWORD="env-secret"))
    try:
        host = json.loads(proc.stdout.readline())
        session = XenAPI.Session(host["url"])
        session.xenapi.login_with_password("root", "env-secret")
        assert session.xenapi.pool.get_all()
    finally:
        proc.kill()
        proc.wait(5)
