"""The xapi session helper against tiny real XML-RPC servers (no mocks).

Each fake host is a SimpleXMLRPCServer on loopback answering with xapi's
Status/Value envelopes, so the real XenAPI client and transport are used.
"""

import socket
import threading
import time
import xmlrpc.server

import pytest

from poolmgr.xenapi import errors
from poolmgr.xenapi import operations
from poolmgr.xenapi import session as xsession


def _ok(value):
    return {"Status": "Success", "Value": value}


def _fail(*description):
    return {"Status": "Failure", "ErrorDescription": list(description)}


class FakeHost:
    """A host that answers a handful of xapi methods; records every call."""

    def __init__(self, slave_of=None, event_from=True, address="127.0.0.1",
                 port=0):
        self.calls = []
        self.slave_of = slave_of
        self.event_from = event_from
        self.sessions = set()
        self.delay = 0
        self.fail_once = {}
        self.server = xmlrpc.server.SimpleXMLRPCServer(
            (address, port), logRequests=False, allow_none=True)
        self.server.register_instance(self)
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d/" % (address, self.port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _dispatch(self, method, params):
        self.calls.append(method)
        if self.delay:
            time.sleep(self.delay)
        if method in self.fail_once:
            return _fail(*self.fail_once.pop(method))
        if method == "session.login_with_password":
            if self.slave_of:
                return _fail("HOST_IS_SLAVE", self.slave_of)
            if params[1] != "secret":
                return _fail("SESSION_AUTHENTICATION_FAILED", params[0],
                             "Authentication failure")
            ref = "OpaqueRef:s%d" % len(self.calls)
            self.sessions.add(ref)
            return _ok(ref)
        if method == "session.logout":
            return _ok("")
        if params and params[0] not in self.sessions:
            return _fail("SESSION_INVALID", params[0])
        if method == "event.from":
            if not self.event_from:
                return _fail("MESSAGE_METHOD_UNKNOWN", method)
            return _ok({"token": "1", "valid_ref_counts": {}, "events": [
                {"class": "pool", "operation": "add", "ref": "OpaqueRef:p",
                 "id": "1", "snapshot": {"uuid": "pu", "name_label": "x",
                                         "master": "OpaqueRef:h"}},
                {"class": "host", "operation": "add", "ref": "OpaqueRef:h",
                 "id": "2", "snapshot": {"uuid": "hu", "address": "1.2.3.4",
                                         "enabled": True,
                                         "metrics": "OpaqueRef:m"}},
                {"class": "host_metrics", "operation": "add",
                 "ref": "OpaqueRef:m", "id": "3", "snapshot": {"live": True}},
            ]})
        if method.endswith(".get_all_records"):
            cls = method.split(".")[0]
            return _ok({"pool": {"OpaqueRef:p": {"uuid": "pu",
                                                 "master": "OpaqueRef:h"}},
                        "host": {"OpaqueRef:h": {"uuid": "hu"}}}.get(cls, {}))
        if method == "pool.join":
            return _ok("")
        return _fail("MESSAGE_METHOD_UNKNOWN", method)


@pytest.fixture
def hosts():
    started = []

    def make(**kwargs):
        host = FakeHost(**kwargs)
        started.append(host)
        return host
    yield make
    for host in started:
        host.stop()


def _session(url, password="secret", **kwargs):
    return xsession.XapiSession(url, "root", password, timeout=2.0, **kwargs)


@pytest.mark.parametrize("url,address,expected", [
    ("http://someserver:8765/somepath", "otherserver",
     "http://otherserver:8765/somepath"),
    ("http://someserver/somepath", "otherserver", "http://otherserver/somepath"),
    ("http://someserver", "otherserver", "http://otherserver"),
    ("https://u:p@10.0.0.1:443/", "10.0.0.2", "https://u:p@10.0.0.2:443/"),
    ("http://10.0.0.1/10.0.0.1", "10.0.0.9", "http://10.0.0.9/10.0.0.1"),
    ("http://h/", "fe80::1", "http://[fe80::1]/"),
])
def test_swap_xapi_host_keeps_scheme_port_and_path(url, address, expected):
    assert xsession.swap_xapi_host(url, address) == expected


def test_login_then_call_returns_value(hosts):
    host = hosts()
    snap = operations.read_pool(_session(host.url))
    assert snap.uuid == "pu" and snap.master_uuid == "hu"
    assert snap.host_live("OpaqueRef:h")
    assert host.calls == ["session.login_with_password", "event.from"]


def test_whole_pool_read_falls_back_to_get_all_records(hosts):
    host = hosts(event_from=False)
    sess = _session(host.url)
    snap = operations.read_pool(sess)
    assert snap.master_uuid == "hu"
    operations.read_pool(sess)
    # event.from is tried once per session, then six constant reads a pass.
    assert host.calls.count("event.from") == 1
    assert len([c for c in host.calls if c.endswith("get_all_records")]) == 12


def test_host_is_slave_follows_to_master_keeping_scheme_and_port(hosts):
    master = hosts(address="127.0.0.2")
    slave = hosts(address="127.0.0.3", port=master.port,
                  slave_of="127.0.0.2")
    sess = _session(slave.url)
    snap = operations.read_pool(sess)
    assert sess.url == master.url
    assert snap.uuid == "pu"
    assert slave.calls == ["session.login_with_password"]


def test_redirect_loop_is_reported_not_spun(hosts):
    host = hosts(slave_of="127.0.0.1")
    with pytest.raises(errors.XapiError) as info:
        _session(host.url).login()
    assert info.value.code == "HOST_IS_SLAVE"
    assert host.calls.count("session.login_with_password") <= 4


def test_host_is_slave_not_followed_when_asked_not_to(hosts):
    slave = hosts(slave_of="10.9.9.9")
    sess = _session(slave.url, follow_master=False)
    with pytest.raises(errors.XapiError) as info:
        sess.login()
    assert info.value.code == "HOST_IS_SLAVE"
    assert info.value.params == ["10.9.9.9"]
    assert info.value.transient


def test_redirect_replaces_only_the_host(hosts):
    slave = hosts(slave_of="127.0.0.2")
    sess = _session("http://127.0.0.1:%d/" % slave.port)
    with pytest.raises(errors.XapiError):
        sess.login()
    assert sess.url == "http://127.0.0.2:%d/" % slave.port


def test_session_invalid_relogs_in_transparently(hosts):
    host = hosts()
    sess = _session(host.url)
    sess.login()
    host.sessions.clear()          # the host restarted
    operations.read_pool(sess)
    assert host.calls.count("session.login_with_password") == 2


def test_failure_maps_to_xapi_error_with_code_params_and_class(hosts):
    host = hosts()
    host.fail_once["pool.join"] = ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]
    sess = _session(host.url)
    with pytest.raises(errors.XapiError) as info:
        operations.join_pool(sess, "10.0.0.1", "root", "secret")
    assert info.value.code == "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"
    assert info.value.params == []
    assert not info.value.transient
    assert "secret" not in str(info.value)


def test_wrong_password_is_permanent_and_not_echoed(hosts):
    host = hosts()
    with pytest.raises(errors.XapiError) as info:
        _session(host.url, password="wrong-pw").login()
    assert info.value.code == "SESSION_AUTHENTICATION_FAILED"
    assert not info.value.transient
    assert "wrong-pw" not in str(info.value)


def test_connection_refused_is_transient_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.XapiUnreachable) as info:
        _session("http://127.0.0.1:%d/" % port).login()
    assert info.value.code == "CONNECTION_FAILED" and info.value.transient


def test_call_timeout_is_enforced(hosts):
    host = hosts()
    host.delay = 1.5
    sess = xsession.XapiSession(host.url, "root", "secret", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(errors.XapiUnreachable) as info:
        sess.login()
    assert time.monotonic() - started < 1.4
    assert info.value.code == "TIMEOUT" and info.value.transient


def test_https_verifies_certificates_by_default():
    sess = xsession.XapiSession("https://127.0.0.1:1/", "root", "secret")
    transport = xsession._make_transport(sess.url, 1.0, True, None)
    assert transport.context.verify_mode.name == "CERT_REQUIRED"
    assert transport.context.check_hostname
    relaxed = xsession._make_transport(sess.url, 1.0, False, None)
    assert relaxed.context.verify_mode.name == "CERT_NONE"


def test_masked_url_hides_a_password_in_the_url():
    sess = xsession.XapiSession("http://root:hunter2@10.0.0.1/", "root", "x")
    assert "hunter2" not in sess.masked_url


@pytest.mark.parametrize("code,transient", [
    ("HOST_STILL_BOOTING", True), ("OTHER_OPERATION_IN_PROGRESS", True),
    ("HOST_OFFLINE", True), ("HOSTS_NOT_HOMOGENEOUS", False),
    ("JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS", False),
    ("INTERNAL_ERROR", False),
])
def test_classification(code, transient):
    assert errors.XapiError(code).transient is transient


def _pem():
    """A self-signed certificate (PEM), made with the simulator's helper."""
    import uuid
    from poolmgr.simulator import tls as sim_tls
    return sim_tls.HostCertificate("xs01", "127.0.0.1",
                                   str(uuid.uuid4())).pem


def test_verified_https_sessions_share_one_tls_context(tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(_pem())
    first = xsession._make_transport("https://10.0.0.1/", 5.0, True,
                                     str(ca_file))
    second = xsession._make_transport("https://10.0.0.2/", 5.0, True,
                                      str(ca_file))
    assert first.context is second.context
    unverified = xsession._make_transport("https://10.0.0.3/", 5.0, False,
                                          None)
    assert unverified.context is not first.context
    assert not unverified.context.check_hostname


def test_a_rewritten_ca_file_gets_a_new_tls_context(tmp_path):
    import os
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(_pem())
    before = xsession._make_transport("https://10.0.0.1/", 5.0, True,
                                      str(ca_file)).context
    ca_file.write_text(_pem())
    stat = ca_file.stat()
    os.utime(ca_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    after = xsession._make_transport("https://10.0.0.1/", 5.0, True,
                                     str(ca_file)).context
    assert after is not before
    assert after.cert_store_stats()["x509"] >= 1
