"""xapi's wire protocol as the simulator speaks it.

Reference: reference/xapi.md §1 (wire), §4 (HOST_IS_SLAVE), §5 (XenAPI.py).
"""

import http.client
import json
import re
import threading

import pytest
import XenAPI

from tests.simulator.sim_client import PASSWORD
from tests.simulator.sim_client import USER
from tests.simulator.sim_client import connect
from tests.simulator.sim_client import fails
from tests.simulator.sim_client import login
from tests.simulator.sim_client import raw
from tests.simulator.sim_client import wait_for

REF = re.compile(r"^OpaqueRef:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                 r"[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def sim(simulator):
    return simulator(hosts=2)


@pytest.mark.parametrize("params", [
    (USER, PASSWORD),
    (USER, PASSWORD, "2.21"),
    (USER, PASSWORD, "2.21", "poolmgr-tests"),
])
def test_login_accepts_two_to_four_params(sim, params):
    session = connect(sim.hosts[0])
    reply = raw(session, "session.login_with_password", *params)
    assert reply["Status"] == "Success"
    assert REF.match(reply["Value"])


@pytest.mark.parametrize("params", [(USER,), (USER, PASSWORD, "1", "o", "x")])
def test_login_with_wrong_param_count_is_a_count_mismatch(sim, params):
    session = connect(sim.hosts[0])
    reply = raw(session, "session.login_with_password", *params)
    assert reply["Status"] == "Failure"
    assert reply["ErrorDescription"][0] == "MESSAGE_PARAMETER_COUNT_MISMATCH"
    assert reply["ErrorDescription"][1] == "session.login_with_password"
    assert reply["ErrorDescription"][3] == str(len(params))


def test_wrong_password_fails_with_username_and_message(sim):
    session = connect(sim.hosts[0])
    details = fails(session.xenapi.login_with_password, USER, "wrong")
    assert details[0] == "SESSION_AUTHENTICATION_FAILED"
    assert details[1] == USER
    assert len(details) == 3 and details[2]


def test_logout_invalidates_the_session(sim):
    session = login(sim.hosts[0])
    handle = session.handle
    session.xenapi.session.logout()
    assert session.handle is None
    other = connect(sim.hosts[0])
    reply = raw(other, "host.get_all", handle)
    assert reply["ErrorDescription"] == ["SESSION_INVALID", handle]


def test_success_envelope_carries_status_and_value(sim):
    session = login(sim.hosts[0])
    reply = raw(session, "pool.get_all", session.handle)
    assert set(reply) == {"Status", "Value"}
    assert reply["Status"] == "Success"
    void = raw(session, "pool.set_name_label", session.handle,
               reply["Value"][0], "renamed")
    assert void == {"Status": "Success", "Value": ""}


def test_ints_travel_as_strings(sim):
    session = login(sim.hosts[0])
    host = session.xenapi.host.get_all()[0]
    assert session.xenapi.host.get_API_version_major(host) == "2"
    record = session.xenapi.host.get_record(host)
    assert isinstance(record["memory_overhead"], str)
    metrics = session.xenapi.host_metrics.get_record(record["metrics"])
    assert isinstance(metrics["memory_total"], str)
    assert int(metrics["memory_total"]) > 0
    assert metrics["live"] is True


def test_refs_are_opaque_refs_and_null_ref_is_spelt_out(sim):
    session = login(sim.hosts[0])
    assert REF.match(session.handle)
    records = session.xenapi.VM.get_all_records()
    for ref, vm in records.items():
        assert REF.match(ref)
    dom0 = next(vm for vm in records.values() if vm["is_control_domain"])
    assert REF.match(dom0["resident_on"])
    vm = session.xenapi.VM.create({"name_label": "halted"})
    assert session.xenapi.VM.get_resident_on(vm) == "OpaqueRef:NULL"


def test_unknown_ref_is_handle_invalid_with_class_and_ref(sim):
    session = login(sim.hosts[0])
    bogus = "OpaqueRef:00000000-0000-0000-0000-000000000000"
    assert fails(session.xenapi.host.get_record, bogus) == \
        ["HANDLE_INVALID", "host", bogus]
    assert fails(session.xenapi.SR.get_name_label, bogus) == \
        ["HANDLE_INVALID", "SR", bogus]


def test_unknown_uuid_is_uuid_invalid(sim):
    session = login(sim.hosts[0])
    details = fails(session.xenapi.host.get_by_uuid, "not-a-host")
    assert details == ["UUID_INVALID", "host", "not-a-host"]
    host = sim.hosts[0]
    assert session.xenapi.host.get_by_uuid(host["uuid"]) == \
        session.xenapi.host.get_all()[0]


def test_unknown_method_is_message_method_unknown(sim):
    session = login(sim.hosts[0])
    assert fails(session.xenapi.host.frobnicate) == \
        ["MESSAGE_METHOD_UNKNOWN", "host.frobnicate"]
    assert fails(session.xenapi.nosuchclass.get_all) == \
        ["MESSAGE_METHOD_UNKNOWN", "nosuchclass.get_all"]


def test_wrong_arity_is_parameter_count_mismatch_counting_the_session(sim):
    session = login(sim.hosts[0])
    host = session.xenapi.host.get_all()[0]
    details = fails(session.xenapi.host.get_record, host, "extra")
    assert details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "host.get_record",
                       "2", "3"]
    assert fails(session.xenapi.pool.eject) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.eject", "2", "1"]
    assert fails(session.xenapi.pool.join, "127.0.0.1", USER) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.join", "4", "3"]
    assert fails(session.xenapi.SR.create, host) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "SR.create", "10", "2"]


def test_sessions_die_when_the_host_restarts(simulator):
    # eject restarts the ejected host's xapi; its old sessions are gone
    sim = simulator(hosts=2)
    joiner, master = sim.hosts[1], sim.hosts[0]
    from tests.simulator.sim_client import join
    master_session = join(sim, joiner, master)
    slave_local = connect(joiner)
    slave_local.slave_local_login_with_password(USER, PASSWORD)
    stale = slave_local.handle
    ref = master_session.xenapi.host.get_by_uuid(joiner["uuid"])
    master_session.xenapi.pool.eject(ref)
    wait_for(lambda: sim.role(joiner["name_label"]) == "master")
    probe = connect(joiner)
    reply = wait_for(lambda: _try(probe, "host.get_all", stale))
    assert reply["ErrorDescription"] == ["SESSION_INVALID", stale]


def _try(session, method, *params):
    try:
        return raw(session, method, *params)
    except (OSError, http.client.HTTPException):
        return None


def test_xenapi_relogs_in_transparently_after_session_invalid(sim):
    session = login(sim.hosts[0])
    raw(session, "session.logout", session.handle)
    old = session.handle
    assert session.xenapi.host.get_all()
    assert session.handle != old


@pytest.mark.parametrize("path", ["/", "/RPC2", ""])
def test_xml_rpc_served_on_root_and_rpc2(sim, path):
    session = connect(sim.hosts[0], path=path)
    session.xenapi.login_with_password(USER, PASSWORD)
    assert session.xenapi.pool.get_all()
    paths = {c.method for c in sim.calls(host=sim.hosts[0])}
    assert "pool.get_all" in paths


def test_malformed_body_gets_http_500(sim):
    host = sim.hosts[0]
    port = int(host["url"].rsplit(":", 1)[1].rstrip("/"))
    conn = http.client.HTTPConnection(host["address"], port, timeout=5)
    conn.request("POST", "/", body=b"<this is not xml-rpc",
                 headers={"Content-Type": "text/xml"})
    response = conn.getresponse()
    assert response.status == 500
    conn.close()


def test_concurrent_clients_from_threads_all_succeed(sim):
    errors = []
    counts = []

    def worker(host):
        try:
            session = login(host)
            n = 0
            for _ in range(25):
                records = session.xenapi.host.get_all_records()
                assert len(records) == 1
                n += 1
            session.xenapi.session.logout()
            counts.append(n)
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(sim.hosts[i % 2],))
               for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert counts == [25] * 12


def test_login_on_a_slave_answers_host_is_slave_with_master_address(simulator):
    from tests.simulator.sim_client import join
    sim = simulator(hosts=2)
    master, slave = sim.hosts
    join(sim, slave, master)
    session = connect(slave)
    details = fails(session.xenapi.login_with_password, USER, PASSWORD)
    assert details == ["HOST_IS_SLAVE", master["address"]]


def test_xenapi_failure_str_is_the_error_description(sim):
    session = connect(sim.hosts[0])
    with pytest.raises(XenAPI.Failure) as info:
        session.xenapi.login_with_password(USER, "nope")
    assert "SESSION_AUTHENTICATION_FAILED" in str(info.value)


def test_old_session_after_join_is_invalid_and_relogin_meets_host_is_slave(
        simulator):
    from tests.simulator.sim_client import join
    sim = simulator(hosts=2)
    master, joiner = sim.hosts
    before = login(joiner)
    stale = before.handle
    join(sim, joiner, master)
    reply = raw(connect(joiner), "host.get_all", stale)
    assert reply["ErrorDescription"] == ["SESSION_INVALID", stale]
    # XenAPI re-logs in on SESSION_INVALID; that login meets HOST_IS_SLAVE
    assert fails(before.xenapi.host.get_all) == \
        ["HOST_IS_SLAVE", master["address"]]


# -- JSON-RPC on /jsonrpc (§1); XenAPI.py has none, so plain HTTP -----------

def jsonrpc(host, request):
    port = int(host["url"].rsplit(":", 1)[1].rstrip("/"))
    conn = http.client.HTTPConnection(host["address"], port, timeout=5)
    conn.request("POST", "/jsonrpc", body=json.dumps(request),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_jsonrpc_v1_and_v2_replies(sim):
    host = sim.hosts[0]
    status, body = jsonrpc(host, {"method": "session.login_with_password",
                                  "params": [USER, PASSWORD], "id": 1})
    reply = json.loads(body)
    assert status == 200 and reply["error"] is None and reply["id"] == 1
    assert REF.match(reply["result"])
    _, body = jsonrpc(host, {"jsonrpc": "2.0", "method": "host.get_all",
                             "params": [reply["result"]], "id": "a"})
    reply2 = json.loads(body)
    assert reply2["jsonrpc"] == "2.0" and reply2["id"] == "a"
    assert len(reply2["result"]) == 1


def test_jsonrpc_errors_in_v1_and_v2_shapes(sim):
    host = sim.hosts[0]
    _, body = jsonrpc(host, {"method": "session.login_with_password",
                             "params": [USER, "bad"], "id": 7})
    reply = json.loads(body)
    assert reply["result"] is None
    assert reply["error"][:2] == ["SESSION_AUTHENTICATION_FAILED", USER]
    _, body = jsonrpc(host, {"jsonrpc": "2.0", "method": "host.frob",
                             "params": ["OpaqueRef:NULL"], "id": 8})
    reply = json.loads(body)
    assert reply["error"] == {"code": 1, "message": "MESSAGE_METHOD_UNKNOWN",
                              "data": ["host.frob"]}


def test_jsonrpc_request_without_id_is_rejected(sim):
    status, _ = jsonrpc(sim.hosts[0], {"method": "session.login_with_password",
                                       "params": [USER, PASSWORD],
                                       "id": None})
    assert status == 500


def test_session_refs_work_across_xml_rpc_and_json_rpc(sim):
    session = login(sim.hosts[0])
    _, body = jsonrpc(sim.hosts[0], {"method": "pool.get_all",
                                     "params": [session.handle], "id": 2})
    assert json.loads(body)["result"] == session.xenapi.pool.get_all()
