"""Secrets audit: the whole flow at DEBUG, then look everywhere.

A RabbitMQ user with a password made for this test, a simulator whose xapi
password is made for this test, the daemon at DEBUG forming a pool from
Nova's notifications, with xapi errors on the way (a refused login, a
failed join). Afterwards neither password may appear in a log line, a row
of any table (every table is dumped: the journal, members, pools, the
notification log...), an error text stored for operators, what
``poolmgr-manage`` prints, or a process title of the daemon and its workers.

And ``https://`` xapi URLs verify certificates unless told otherwise: a
self-signed server gets a TLS error, never a login or a join.
"""

import http.server
import json
import pathlib
import ssl
import subprocess
import sys
import threading
import uuid

import pytest

from poolmgr.db import api as db_api
from tests.conftest import service_unavailable
from tests.functional import daemon_support as support
from tests.functional import engine_support as es


def _rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl"] + list(args), capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def rabbit_secret_url(rabbit_url):
    """A RabbitMQ user whose password exists only in this test."""
    user = "pm_secret_%s" % uuid.uuid4().hex[:8]
    password = "rmq-S3cr3t-%s" % uuid.uuid4().hex[:10]
    try:
        created = _rabbitmqctl("add_user", user, password)
    except (OSError, subprocess.SubprocessError) as exc:
        service_unavailable("rabbitmqctl (to add a RabbitMQ user)", exc)
    if created.returncode != 0:
        service_unavailable("rabbitmqctl add_user",
                            created.stderr[-300:].strip())
    try:
        _rabbitmqctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        host = rabbit_url.rsplit("@", 1)[1]
        yield "rabbit://%s:%s@%s" % (user, password, host), password
    finally:
        _rabbitmqctl("delete_user", user)


def _manage(config, *args):
    binary = pathlib.Path(sys.executable).with_name("poolmgr-manage")
    return subprocess.run([str(binary), "--config-file", str(config)]
                          + list(args), capture_output=True, text=True,
                          timeout=60)


def test_no_secret_in_logs_rows_errors_or_process_titles(
        rabbit_secret_url, mysql_url, simulator, tmp_path):
    transport_url, rabbit_password = rabbit_secret_url
    xapi_password = support.XAPI_SECRET
    sim = simulator(hosts=4, password=xapi_password, join_delay=0.2,
                    eject_delay=0.2)
    names = es.register(sim)
    # Errors on the way, so exception texts exist: a refused login and a
    # join that fails for good on one host, a latency spike on another.
    sim.fail_next(sim.hosts[2]["name_label"], "session.login_with_password",
                  code="SESSION_AUTHENTICATION_FAILED",
                  params=["root", "Authentication failure"])
    sim.fail_next(sim.hosts[3]["name_label"], "pool.join",
                  code="JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS")
    bus = support.Bus(transport_url)
    daemon = support.Daemon(
        tmp_path, bus, mysql_url, debug=True, extra=(
            "[reconciler]\npoll_interval = 0.2\nlease_time = 10\n"
            "retry_initial_backoff = 0.1\nretry_max_backoff = 1\n"
            "max_attempts = 2\n"))
    try:
        daemon.start()
        nova = bus.nova()
        agg = nova.create_aggregate("secret-pool")
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
        for name in names:
            nova.add_host(agg, name)
        support.recorded(len(nova.sent))
        support.wait_for(lambda: {m["host"]: m["state"] for m in
                                  db_api.list_members(agg)}.get("cmp-4")
                         == "error" and all(
                             m["state"] == "active"
                             for m in db_api.list_members(agg)
                             if m["host"] != "cmp-4"),
                         timeout=90, what="the pool to form around cmp-4")
        bus.publish_raw(b"{garbage")
        titles = daemon.process_titles()
        show = _manage(daemon.config, "pool", "show", str(agg), "--format",
                       "json")
        status = _manage(daemon.config, "status")
        code, _ = daemon.stop()
    finally:
        daemon.kill()
        bus.cleanup()
    assert code == 0
    log = daemon.log_text()
    assert " DEBUG " in log
    assert "JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS" in log
    tables = support.dump_tables(mysql_url)
    assert "JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS" in tables
    shown = {m["host"]: (m["state"], m["error_code"])
             for m in json.loads(show.stdout)["members"]}
    assert shown == dict(
        {name: ("active", None) for name in names if name != "cmp-4"},
        **{"cmp-4": ("error", "JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS")})
    for where, text in (("log", log), ("database", tables),
                        ("process titles", titles),
                        ("pool show", show.stdout + show.stderr),
                        ("status", status.stdout + status.stderr),
                        ("config echo", _config_dump_lines(log))):
        assert xapi_password not in text, "xapi password in the %s" % where
        assert rabbit_password not in text, \
            "transport password in the %s" % where
    for title in titles.splitlines():
        assert "--config-file" in title or title.startswith("poolmgr:"), title


def _config_dump_lines(log):
    # conf.log_opt_values at startup: secret options must print as ****.
    lines = [line for line in log.splitlines()
             if "connection_password" in line or "transport_url" in line]
    assert lines, "the configuration was not logged at DEBUG"
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# TLS: https xapi URLs verify certificates by default
# ---------------------------------------------------------------------------

@pytest.fixture
def self_signed_https(tmp_path):
    """An HTTPS XML-RPC-ish server with a self-signed certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1"], capture_output=True, timeout=60)
    if made.returncode != 0:
        service_unavailable("openssl (to make a certificate)",
                            made.stderr[-300:])
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(body)
            reply = (b"<?xml version='1.0'?><methodResponse><params><param>"
                     b"<value><struct><member><name>Status</name><value>"
                     b"Failure</value></member><member><name>"
                     b"ErrorDescription</name><value><array><data><value>"
                     b"SESSION_AUTHENTICATION_FAILED</value></data></array>"
                     b"</value></member></struct></value></param></params>"
                     b"</methodResponse>")
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "https://127.0.0.1:%d/" % server.server_address[1], requests, \
            str(cert)
    finally:
        server.shutdown()
        server.server_close()


def test_https_xapi_verifies_certificates_by_default(self_signed_https):
    from poolmgr.xenapi import errors
    from poolmgr.xenapi import session as xsession

    url, requests, _ = self_signed_https
    conf = es.make_conf()
    assert conf.xenserver.verify_tls is True
    cache = xsession.SessionCache(conf)
    with pytest.raises(errors.XapiError) as caught:
        cache.fresh(url).login()
    assert caught.value.code == "TLS_ERROR"
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert es.PASSWORD not in str(caught.value)
    assert requests == [], "a request went out over an unverified channel"


def test_https_xapi_trusts_a_given_ca_file_and_reaches_the_server(
        self_signed_https):
    from poolmgr.xenapi import errors
    from poolmgr.xenapi import session as xsession

    url, requests, cert = self_signed_https
    conf = es.make_conf()
    conf.set_override("ca_file", cert, group="xenserver")
    try:
        with pytest.raises(errors.XapiError) as caught:
            xsession.SessionCache(conf).fresh(url).login()
    finally:
        conf.clear_override("ca_file", group="xenserver")
    # The server answered (with its refusal): TLS itself was accepted.
    assert caught.value.code == "SESSION_AUTHENTICATION_FAILED"
    assert len(requests) == 1


def test_engine_never_joins_through_an_unverified_https_host(
        self_signed_https, mysql_url, simulator):
    url, requests, _ = self_signed_https
    sim = simulator(hosts=1, password=es.PASSWORD)
    db_api.register_host("cmp-1", sim.hosts[0]["url"])
    db_api.register_host("cmp-tls", url)
    es.want(1, "pool-tls", ["cmp-1", "cmp-tls"])
    result = es.engine(es.make_conf(max_attempts=1)).reconcile_pool(1)
    assert not result.converged
    assert requests == []
    assert sim.calls("pool.join") == []
    member = es.members(1)["cmp-tls"]
    assert member["state"] != "active"
    text = json.dumps(db_api.get_pool(1), default=str) + json.dumps(
        es.members(1), default=str)
    assert member["error_code"] == "TLS_ERROR"
    assert "CERTIFICATE_VERIFY_FAILED" in " ".join(member["error_params"])
    assert "CERTIFICATE_VERIFY_FAILED" in text
