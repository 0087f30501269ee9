"""Fault injection and the call log, as a test or the demo uses them."""

import http.client
import socket
import time
import xmlrpc.client

import pytest
import XenAPI

from tests.simulator.sim_client import PASSWORD
from tests.simulator.sim_client import USER
from tests.simulator.sim_client import connect
from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login
from tests.simulator.sim_client import raw
from tests.simulator.sim_client import wait_for


def live(session, uuid):
    ref = session.xenapi.host.get_by_uuid(uuid)
    return session.xenapi.host_metrics.get_live(
        session.xenapi.host.get_metrics(ref))


def test_fail_next_fails_that_many_calls_with_the_code_and_params(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    sim.fail_next("xs01", "host.get_all", count=2, code="HOST_OFFLINE",
                  params=("OpaqueRef:x",))
    assert fails(session.xenapi.host.get_all) == ["HOST_OFFLINE",
                                                  "OpaqueRef:x"]
    assert fails(session.xenapi.host.get_all) == ["HOST_OFFLINE",
                                                  "OpaqueRef:x"]
    assert len(session.xenapi.host.get_all()) == 1


def test_fail_next_touches_only_the_named_method_and_host(simulator):
    sim = simulator(hosts=2)
    sim.fail_next("xs01", "pool.get_all")
    other = login(sim.hosts[1])
    assert other.xenapi.pool.get_all()
    session = login(sim.hosts[0])
    assert session.xenapi.host.get_all()
    assert fails(session.xenapi.pool.get_all) == ["INTERNAL_ERROR"]


def test_dropped_connection_is_seen_by_the_xenapi_client(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    sim.fail_next("xs01", "host.get_all", drop_connection=True)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        session.xenapi.host.get_all()
    time.sleep(1.1)  # past the window that also drops xmlrpc's own retry
    assert len(session.xenapi.host.get_all()) == 1


def test_fail_next_over_the_sim_namespace_needs_no_session(simulator):
    sim = simulator(hosts=1)
    proxy = xmlrpc.client.ServerProxy(sim.hosts[0]["url"])
    assert getattr(proxy, "sim.fail_next")(
        "xs01", "pool.get_all", 1, "SR_BACKEND_FAILURE_73", ["boom"]) == \
        {"Status": "Success", "Value": ""}
    session = login(sim.hosts[0])
    assert fails(session.xenapi.pool.get_all) == ["SR_BACKEND_FAILURE_73",
                                                  "boom"]


def test_sim_namespace_sets_up_a_running_vm(simulator):
    sim = simulator(hosts=1)
    session = connect(sim.hosts[0])
    reply = raw(session, "sim.create_running_vm", "xs01", "web")
    assert reply["Status"] == "Success"
    session = login(sim.hosts[0])
    vm = session.xenapi.VM.get_by_uuid(reply["Value"])
    assert session.xenapi.VM.get_power_state(vm) == "Running"


def test_latency_is_added_to_every_call(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    sim.set_latency("xs01", 0.3)
    start = time.monotonic()
    session.xenapi.host.get_all()
    assert time.monotonic() - start >= 0.3
    sim.set_latency("xs01", 0)
    start = time.monotonic()
    session.xenapi.host.get_all()
    assert time.monotonic() - start < 0.3


def test_offline_host_refuses_connections_and_comes_back(simulator):
    sim = simulator(hosts=1)
    sim.set_offline("xs01")
    with pytest.raises(ConnectionRefusedError):
        connect(sim.hosts[0]).xenapi.login_with_password(USER, PASSWORD)
    sim.set_offline("xs01", False)
    assert login(sim.hosts[0]).xenapi.host.get_all()


def test_offline_slave_is_not_live_on_its_master(simulator):
    sim = simulator(hosts=2)
    master = join(sim, sim.hosts[1], sim.hosts[0])
    sim.set_offline("xs02")
    assert live(master, sim.hosts[1]["uuid"]) is False
    sim.set_offline("xs02", False)
    assert live(master, sim.hosts[1]["uuid"]) is True


def test_offline_host_drops_its_open_connections(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    session.xenapi.host.get_all()  # a kept-alive connection is open now
    sim.set_offline("xs01")
    with pytest.raises((OSError, http.client.HTTPException)):
        session.xenapi.host.get_all()


def test_pbd_plug_failure_fails_pbd_plug_with_the_code(simulator):
    sim = simulator(hosts=1)
    sim.create_shared_sr("xs01", "NFS")
    session = login(sim.hosts[0])
    pbd = session.xenapi.SR.get_PBDs(
        session.xenapi.SR.get_by_name_label("NFS")[0])[0]
    session.xenapi.PBD.unplug(pbd)
    sim.set_pbd_plug_failure("xs01", "NFS", code="SR_BACKEND_FAILURE_108")
    assert fails(session.xenapi.PBD.plug, pbd)[0] == "SR_BACKEND_FAILURE_108"
    assert session.xenapi.PBD.get_currently_attached(pbd) is False
    sim.set_pbd_plug_failure("xs01", "NFS", enabled=False)
    session.xenapi.PBD.plug(pbd)
    assert session.xenapi.PBD.get_currently_attached(pbd) is True


def test_software_version_change_is_visible_in_the_record(simulator):
    sim = simulator(hosts=1)
    sim.set_software_version("xs01", platform_version="9.9.9")
    sim.set_cpu_vendor("xs01", "AuthenticAMD")
    sim.set_edition("xs01", "xenserver-standard")
    sim.set_api_version("xs01", 2, 99)
    session = login(sim.hosts[0])
    record = session.xenapi.host.get_record(session.xenapi.host.get_all()[0])
    assert record["software_version"]["platform_version"] == "9.9.9"
    assert record["cpu_info"]["vendor"] == "AuthenticAMD"
    assert record["edition"] == "xenserver-standard"
    assert (record["API_version_major"], record["API_version_minor"]) == \
        ("2", "99")


def test_call_log_hides_passwords_and_session_refs(simulator):
    sim = simulator(hosts=2)
    session = login(sim.hosts[1])
    session.xenapi.pool.join(sim.hosts[0]["address"], USER, PASSWORD)
    logins = sim.calls(method="session.login_with_password", host="xs02")
    assert logins[0].params[:2] == [USER, "***"]
    joins = sim.calls(method="pool.join")
    assert [(c.host, c.params) for c in joins] == \
        [("xs02", [sim.hosts[0]["address"], USER, "***"])]
    assert all(PASSWORD not in repr(c) for c in sim.call_log)
    assert all(session.handle not in repr(c) for c in sim.call_log)


def test_call_log_has_only_calls_from_clients(simulator):
    sim = simulator(hosts=2)
    join(sim, sim.hosts[1], sim.hosts[0])
    # the joiner's own login to the master is internal, not a client call
    assert [c.host for c in sim.calls(method="pool.join")] == ["xs02"]
    first = sim.calls(host="xs01")[0]
    assert first.method == "session.login_with_password"
    assert first.timestamp <= time.time()


def test_reset_call_log_empties_it(simulator):
    sim = simulator(hosts=1)
    login(sim.hosts[0])
    assert sim.call_log
    sim.reset_call_log()
    assert sim.call_log == []


def test_many_clients_on_many_hosts_at_once(simulator):
    import concurrent.futures
    sim = simulator(hosts=4)

    def work(index):
        session = login(sim.hosts[index % 4])
        for _ in range(10):
            assert len(session.xenapi.host.get_all_records()) == 1
        session.xenapi.session.logout()
        return True
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert all(pool.map(work, range(32)))
    assert len(sim.calls(method="host.get_all_records")) == 320


def test_join_window_refuses_connections_then_answers_host_is_slave(
        simulator):
    sim = simulator(hosts=2, join_delay=0.5)
    session = login(sim.hosts[1])
    session.xenapi.pool.join(sim.hosts[0]["address"], USER, PASSWORD)
    probe = socket.socket()
    probe.settimeout(2)
    with pytest.raises(ConnectionRefusedError):
        probe.connect((sim.hosts[1]["address"],
                       int(sim.hosts[1]["url"].rsplit(":", 1)[1].strip("/"))))
    probe.close()

    def answer():
        try:
            login(sim.hosts[1])
        except XenAPI.Failure as exc:
            return exc.details
        except OSError:
            return None
    assert wait_for(answer) == ["HOST_IS_SLAVE", sim.hosts[0]["address"]]
