"""--tls: every host serves HTTPS with its own self-signed certificate.

Reference: reference/xapi.md §1 (HTTPS 443 beside HTTP 80); the issue's
``host.get_server_certificate`` and ``xe host-refresh-server-certificate``.
"""

import hashlib
import http.client
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import urllib.parse
import xmlrpc.client

from cryptography import x509
import pytest
import XenAPI

from tests.simulator.sim_client import PASSWORD
from tests.simulator.sim_client import USER
from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import wait_for


def _unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_der(url):
    """The DER certificate a TLS handshake with ``url`` presents."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port),
                                  timeout=5) as raw_sock:
        with _unverified().wrap_socket(raw_sock) as tls_sock:
            return tls_sock.getpeercert(binary_form=True)


def colon_sha256(der):
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, 64, 2))


def tls_login(url, context=None):
    session = XenAPI.Session(url, transport=xmlrpc.client.SafeTransport(
        context=context or _unverified()))
    session.xenapi.login_with_password(USER, PASSWORD, "2.21", "tests")
    return session


@pytest.fixture
def sim(simulator):
    return simulator(hosts=2, tls=True)


def test_tls_hosts_have_https_urls_and_a_fingerprint(sim):
    for host in sim.hosts:
        assert host["url"].startswith("https://%s:" % host["address"])
        assert len(host["sha256_fingerprint"]) == 95


def test_the_handshake_presents_the_fingerprint_of_the_json_line(sim):
    for host in sim.hosts:
        assert colon_sha256(peer_der(host["url"])) == \
            host["sha256_fingerprint"]


def test_each_host_has_its_own_certificate(sim):
    first, second = sim.hosts
    assert first["sha256_fingerprint"] != second["sha256_fingerprint"]


def test_certificate_is_self_signed_with_the_address_in_its_san(sim):
    host = sim.hosts[0]
    cert = x509.load_der_x509_certificate(peer_der(host["url"]))
    assert cert.subject == cert.issuer
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert ipaddress.ip_address(host["address"]) in \
        san.get_values_for_type(x509.IPAddress)


def test_get_server_certificate_returns_the_pem_it_serves(sim):
    host = sim.hosts[0]
    session = tls_login(host["url"])
    ref = session.xenapi.host.get_by_uuid(host["uuid"])
    pem = session.xenapi.host.get_server_certificate(ref)
    assert ssl.PEM_cert_to_DER_cert(pem) == peer_der(host["url"])


def test_a_master_returns_its_slaves_certificate(sim):
    master, joiner = sim.hosts
    join(sim, joiner, master)
    session = tls_login(master["url"])
    ref = session.xenapi.host.get_by_uuid(joiner["uuid"])
    pem = session.xenapi.host.get_server_certificate(ref)
    assert colon_sha256(ssl.PEM_cert_to_DER_cert(pem)) == \
        joiner["sha256_fingerprint"]


def test_default_verification_refuses_the_self_signed_certificate(sim):
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_login(sim.hosts[0]["url"], ssl.create_default_context())


def test_its_own_pem_as_ca_file_verifies_it_by_address(sim, tmp_path):
    host = sim.hosts[0]
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(sim.certificate(host["name_label"]).pem)
    session = tls_login(host["url"],
                        ssl.create_default_context(cafile=str(ca_file)))
    assert session.xenapi.host.get_all()


def test_rotation_serves_a_new_certificate(sim):
    host = sim.hosts[0]
    new = sim.rotate_certificate(host["name_label"])
    assert new != host["sha256_fingerprint"]
    assert colon_sha256(peer_der(host["url"])) == new
    assert sim.hosts[0]["sha256_fingerprint"] == new


def test_rotation_cuts_open_connections(sim):
    host = sim.hosts[0]
    parts = urllib.parse.urlsplit(host["url"])
    conn = http.client.HTTPSConnection(parts.hostname, parts.port,
                                       context=_unverified(), timeout=5)
    body = xmlrpc.client.dumps((USER, PASSWORD),
                               "session.login_with_password")
    conn.request("POST", "/", body)
    assert conn.getresponse().read()
    sim.rotate_certificate(host["name_label"])
    conn.sock.settimeout(5)
    try:
        data = conn.sock.recv(1)
    except ssl.SSLError:
        data = b""  # the server's side ended the TLS session
    assert data == b""


def test_rotation_over_the_sim_namespace_returns_the_fingerprint(sim):
    host = sim.hosts[0]
    proxy = xmlrpc.client.ServerProxy(host["url"], context=_unverified())
    reply = proxy.sim.rotate_certificate(host["name_label"])
    assert reply["Status"] == "Success"
    assert reply["Value"] == sim.hosts[0]["sha256_fingerprint"]


def test_plain_http_is_still_answered_on_the_same_port(sim):
    host = sim.hosts[0]
    session = XenAPI.Session(host["url"].replace("https://", "http://"))
    session.xenapi.login_with_password(USER, PASSWORD, "2.21", "tests")
    assert session.xenapi.host.get_all()


def test_without_tls_urls_are_http_and_carry_no_fingerprint(simulator):
    sim = simulator(hosts=1, tls=False)
    host = sim.hosts[0]
    assert host["url"].startswith("http://")
    assert "sha256_fingerprint" not in host
    session = XenAPI.Session(host["url"])
    session.xenapi.login_with_password(USER, PASSWORD, "2.21", "tests")
    ref = session.xenapi.host.get_all()[0]
    assert fails(session.xenapi.host.get_server_certificate, ref)[0] == \
        "MESSAGE_METHOD_UNKNOWN"


def test_cli_tls_prints_https_urls_and_fingerprints():
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolmgr.simulator.cli", "--hosts", "2",
         "--port", "0", "--address-base", "230", "--tls"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        hosts = [json.loads(proc.stdout.readline()) for _ in range(2)]
        for host in hosts:
            assert host["url"].startswith("https://")
            assert colon_sha256(peer_der(host["url"])) == \
                host["sha256_fingerprint"]
    finally:
        proc.kill()
        proc.wait(5)


def test_a_dropped_handshake_does_not_stop_the_host(sim):
    host = sim.hosts[0]
    parts = urllib.parse.urlsplit(host["url"])
    for _ in range(3):
        with socket.create_connection((parts.hostname, parts.port),
                                      timeout=5) as raw_sock:
            raw_sock.sendall(b"\x16\x03\x01garbage")
    wait_for(lambda: tls_login(host["url"]))
