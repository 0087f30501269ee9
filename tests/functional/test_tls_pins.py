"""Pinned certificates end to end: poolmgr-manage, the engine, the
simulator over --tls (real XenAPI client, real MariaDB).

Every xapi host has a self-signed certificate. A pinned host is accepted on
exactly its pin; any other certificate stops the connection right after the
handshake (TLS_PIN_MISMATCH), before a login, so the simulator's call log
shows no session.login_with_password on it.
"""

import datetime
import json
import logging
import pathlib
import subprocess
import sys

from oslo_utils import timeutils
import pytest

from poolmgr.db import api as db_api
from poolmgr.xenapi import errors
from poolmgr.xenapi import session as xsession
from tests.functional import daemon_support as support
from tests.functional import engine_support as es

LOGIN = "session.login_with_password"


@pytest.fixture
def sim(request, mysql_url):
    es.simulator_or_skip()
    simulator = request.getfixturevalue("simulator")

    def make(hosts=2, **kwargs):
        kwargs.setdefault("password", es.PASSWORD)
        kwargs.setdefault("tls", True)
        return simulator(hosts=hosts, **kwargs)
    return make


@pytest.fixture
def conf():
    return es.make_conf()


@pytest.fixture
def config_file(tmp_path, mysql_url):
    return es.write_config(tmp_path / "poolmgr.conf", mysql_url)


def manage(config_file, *args):
    binary = pathlib.Path(sys.executable).with_name("poolmgr-manage")
    return subprocess.run([str(binary), "--config-file", str(config_file)]
                          + list(args), capture_output=True, text=True,
                          timeout=60)


def register_pinned(sim, prefix="cmp"):
    names = es.register(sim, prefix)
    for name, host in zip(names, sim.hosts):
        db_api.set_host_fingerprint(name, host["sha256_fingerprint"])
    return names


def register_unpinned(sim, prefix="cmp"):
    names = []
    for i, host in enumerate(sim.hosts, 1):
        names.append("%s-%d" % (prefix, i))
        db_api.register_host(names[-1], host["url"])
    return names


def form_pool(sim, conf):
    names = register_pinned(sim)
    es.want(1, "tls-pool", names)
    assert es.engine(conf).reconcile_pool(1).converged
    return names


def logins(sim, host):
    return es.calls(sim, LOGIN, host)


def host_json(config_file, name):
    return json.loads(manage(config_file, "host", "show", name, "--format",
                             "json").stdout)


WRONG = ":".join(["AB"] * 32)


# -- host register --pin / --repin -------------------------------------------

def test_register_pin_stores_the_fingerprint_the_host_presents(
        sim, config_file):
    s = sim(1)
    host = s.hosts[0]
    result = manage(config_file, "host", "register", "cmp-1", host["url"],
                    "--pin")
    assert result.returncode == 0, result.stderr
    assert host["sha256_fingerprint"] in result.stdout
    assert "CN=xs01" in result.stdout and "days" in result.stdout
    assert host_json(config_file, "cmp-1")["sha256_fingerprint"] == \
        host["sha256_fingerprint"]


def test_fetching_the_certificate_sends_no_request(sim, config_file):
    s = sim(1)
    manage(config_file, "host", "register", "cmp-1", s.hosts[0]["url"],
           "--pin")
    assert s.call_log == []


def test_register_pin_given_is_normalised(sim, config_file):
    s = sim(1)
    host = s.hosts[0]
    given = host["sha256_fingerprint"].replace(":", "").lower()
    result = manage(config_file, "host", "register", "cmp-1", host["url"],
                    "--pin", given)
    assert result.returncode == 0, result.stderr
    assert host_json(config_file, "cmp-1")["sha256_fingerprint"] == \
        host["sha256_fingerprint"]


@pytest.mark.parametrize("pin", ["AB:CD", "zz" * 32, "AB" * 33])
def test_register_pin_malformed_is_a_usage_error(sim, config_file, pin):
    s = sim(1)
    result = manage(config_file, "host", "register", "cmp-1",
                    s.hosts[0]["url"], "--pin", pin)
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines()
            if line.startswith("poolmgr-manage:")]
    assert len(ours) == 1 and "64 hex digits" in ours[0]
    assert "Traceback" not in result.stderr


def test_register_pin_needs_an_https_url(sim, config_file):
    s = sim(1)
    url = s.hosts[0]["url"].replace("https://", "http://")
    result = manage(config_file, "host", "register", "cmp-1", url, "--pin")
    assert result.returncode == 2
    assert "https://" in result.stderr


def test_register_pin_and_repin_together_is_a_usage_error(sim, config_file):
    s = sim(1)
    result = manage(config_file, "host", "register", "cmp-1",
                    s.hosts[0]["url"], "--pin", "--repin")
    assert result.returncode == 2


def test_register_pin_given_that_differs_warns_and_still_stores_it(
        sim, config_file):
    s = sim(1)
    result = manage(config_file, "host", "register", "cmp-1",
                    s.hosts[0]["url"], "--pin", WRONG)
    assert result.returncode == 0, result.stderr
    assert "TLS_PIN_MISMATCH" in result.stderr
    assert s.hosts[0]["sha256_fingerprint"] in result.stderr
    assert host_json(config_file, "cmp-1")["sha256_fingerprint"] == WRONG


def test_pin_again_after_a_rotation_is_refused_without_repin(
        sim, config_file):
    s = sim(1)
    url = s.hosts[0]["url"]
    old = s.hosts[0]["sha256_fingerprint"]
    manage(config_file, "host", "register", "cmp-1", url, "--pin")
    s.rotate_certificate("xs01")
    result = manage(config_file, "host", "register", "cmp-1", url, "--pin")
    assert result.returncode == 1
    assert "--repin" in result.stderr
    assert host_json(config_file, "cmp-1")["sha256_fingerprint"] == old


def test_repin_after_a_rotation_stores_the_new_fingerprint(
        sim, config_file):
    s = sim(1)
    url = s.hosts[0]["url"]
    old = s.hosts[0]["sha256_fingerprint"]
    manage(config_file, "host", "register", "cmp-1", url, "--pin")
    new = s.rotate_certificate("xs01")
    result = manage(config_file, "host", "register", "cmp-1", url, "--repin")
    assert result.returncode == 0, result.stderr
    assert "repinned cmp-1: SHA256 %s (was %s)" % (new, old) in result.stdout
    assert host_json(config_file, "cmp-1")["sha256_fingerprint"] == new


def test_a_new_url_keeps_the_pin_and_says_so(sim, config_file):
    s = sim(2)
    first, second = s.hosts
    manage(config_file, "host", "register", "cmp-1", first["url"], "--pin")
    result = manage(config_file, "host", "register", "cmp-1", second["url"])
    assert result.returncode == 0, result.stderr
    assert "keeps its pin" in result.stdout and "--repin" in result.stdout
    assert host_json(config_file, "cmp-1")["sha256_fingerprint"] == \
        first["sha256_fingerprint"]


def test_register_pin_with_compute_vm_auto_finds_the_vm_of_a_new_host(
        sim, config_file):
    s = sim(1, compute_vms=True)
    host = s.hosts[0]
    result = manage(config_file, "host", "register", "cmp-1", host["url"],
                    "--pin", "--compute-vm", "auto")
    assert result.returncode == 0, result.stderr
    shown = host_json(config_file, "cmp-1")
    assert (shown["compute_vm_uuid"], shown["sha256_fingerprint"]) == (
        host["compute_vm_uuid"], host["sha256_fingerprint"])


def test_register_compute_vm_auto_over_a_wrong_given_pin_sends_no_login(
        sim, config_file):
    s = sim(1, compute_vms=True)
    result = manage(config_file, "host", "register", "cmp-1",
                    s.hosts[0]["url"], "--pin", WRONG, "--compute-vm", "auto")
    assert result.returncode == 1
    assert "TLS_PIN_MISMATCH" in result.stderr
    assert logins(s, s.hosts[0]) == []
    assert manage(config_file, "host", "show", "cmp-1").returncode == 1


def test_host_show_of_an_unpinned_host_has_no_fingerprint(sim, config_file):
    s = sim(1)
    manage(config_file, "host", "register", "cmp-1", s.hosts[0]["url"])
    assert host_json(config_file, "cmp-1")["sha256_fingerprint"] is None


# -- host check ---------------------------------------------------------------

def test_host_check_of_a_pinned_host_shows_fingerprint_and_expiry(
        sim, config_file):
    s = sim(1)
    host = s.hosts[0]
    manage(config_file, "host", "register", "cmp-1", host["url"], "--pin")
    result = manage(config_file, "host", "check", "cmp-1", "--format",
                    "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["tls_pinned"] and report["tls_verified"]
    assert report["sha256_fingerprint"] == host["sha256_fingerprint"]
    assert 3640 <= report["certificate_days_left"] <= 3650


def test_host_check_after_a_rotation_is_a_mismatch_without_login(
        sim, config_file):
    s = sim(1)
    host = s.hosts[0]
    manage(config_file, "host", "register", "cmp-1", host["url"], "--pin")
    new = s.rotate_certificate("xs01")
    result = manage(config_file, "host", "check", "cmp-1", "--format",
                    "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["error_code"] == "TLS_PIN_MISMATCH"
    assert report["error_params"] == [host["sha256_fingerprint"], new]
    assert "--repin" in report["hint"]
    assert logins(s, host) == []


def test_host_check_after_a_rotation_does_not_call_the_credentials_wrong(
        sim, config_file):
    # Nothing was sent to the host, so nothing is known of the credentials.
    s = sim(1)
    host = s.hosts[0]
    manage(config_file, "host", "register", "cmp-1", host["url"], "--pin")
    s.rotate_certificate("xs01")
    result = manage(config_file, "host", "check", "cmp-1", "--format",
                    "json")
    report = json.loads(result.stdout)
    assert report["error_code"] == "TLS_PIN_MISMATCH"
    assert report["credentials_ok"] is None


def test_host_check_of_an_unpinned_self_signed_host_fails_verification(
        sim, config_file):
    s = sim(1)
    host = s.hosts[0]
    manage(config_file, "host", "register", "cmp-1", host["url"])
    result = manage(config_file, "host", "check", "cmp-1", "--format",
                    "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["error_code"] == "TLS_ERROR"
    assert report["tls_pinned"] is False
    assert "--pin" in report["hint"]
    assert logins(s, host) == []


# -- the engine ---------------------------------------------------------------

def test_pinned_hosts_form_a_pool_over_tls(sim, conf):
    s = sim(2)
    form_pool(s, conf)
    members = es.members(1)
    assert {h: m["state"] for h, m in members.items()} == {
        "cmp-1": "active", "cmp-2": "active"}
    assert len(es.calls(s, "pool.join", s.hosts[1])) == 1


def test_three_pinned_hosts_form_one_pool_over_tls(sim, conf):
    s = sim(3)
    form_pool(s, conf)
    assert db_api.get_pool(1)["master"] == "cmp-1"
    assert {m["state"] for m in es.members(1).values()} == {"active"}
    assert len(es.calls(s, "pool.join")) == 2


def test_a_removed_slave_is_ejected_over_tls(sim, conf):
    s = sim(3)
    form_pool(s, conf)
    es.want(1, "tls-pool", ["cmp-1", "cmp-3"])
    assert es.engine(conf).reconcile_pool(1).converged
    assert len(es.calls(s, "pool.eject", s.hosts[0])) == 1
    assert es.members(1)["cmp-2"]["state"] == "removed"


def test_a_removed_master_hands_over_through_pinned_redirections(sim, conf):
    s = sim(3)
    form_pool(s, conf)
    es.want(1, "tls-pool", ["cmp-2", "cmp-3"])
    result = es.engine(conf).reconcile_pool(1)
    assert result.converged, result
    assert db_api.get_pool(1)["master"] == "cmp-2"
    assert len(es.calls(s, "pool.designate_new_master")) == 1
    assert es.members(1)["cmp-1"]["state"] == "removed"


def test_a_shared_sr_is_plugged_on_a_new_member_over_tls(sim, conf):
    s = sim(2)
    s.create_shared_sr(s.hosts[0]["name_label"], "nfs-shared", "nfs")
    form_pool(s, conf)
    assert db_api.get_pool(1)["live_migration_ready"]


def test_an_unpinned_self_signed_host_is_refused_by_ca_verification(
        sim, conf):
    s = sim(1)
    names = register_unpinned(s)
    es.want(1, "tls-pool", names)
    assert not es.engine(conf).reconcile_pool(1).converged
    assert es.members(1)["cmp-1"]["error_code"] == "TLS_ERROR"
    assert logins(s, s.hosts[0]) == []


def test_its_own_certificate_as_ca_file_verifies_an_unpinned_host(
        sim, conf, tmp_path):
    s = sim(1)
    ca_file = tmp_path / "xs01.pem"
    ca_file.write_text(s.certificate("xs01").pem)
    conf.set_override("ca_file", str(ca_file), group="xenserver")
    names = register_unpinned(s)
    es.want(1, "tls-pool", names)
    assert es.engine(conf).reconcile_pool(1).converged


def test_a_rotated_master_certificate_stops_the_engine_before_login(
        sim, conf):
    s = sim(2)
    form_pool(s, conf)
    old = s.hosts[0]["sha256_fingerprint"]
    new = s.rotate_certificate("xs01")
    s.reset_call_log()
    assert not es.engine(conf).reconcile_pool(1).converged
    member = es.members(1)["cmp-1"]
    assert member["error_code"] == "TLS_PIN_MISMATCH"
    assert member["error_params"] == [old, new]
    assert logins(s, s.hosts[0]) == []


def test_a_running_engine_stops_at_a_rotated_certificate(sim, conf):
    s = sim(2)
    form_pool(s, conf)
    engine = es.engine(conf)
    assert engine.reconcile_pool(1).converged
    s.rotate_certificate("xs01")
    s.reset_call_log()
    assert not engine.reconcile_pool(1).converged
    assert es.members(1)["cmp-1"]["error_code"] == "TLS_PIN_MISMATCH"
    assert logins(s, s.hosts[0]) == []


def test_repin_after_a_rotation_lets_the_engine_converge_again(
        sim, conf, config_file):
    s = sim(2)
    form_pool(s, conf)
    s.rotate_certificate("xs01")
    assert not es.engine(conf).reconcile_pool(1).converged
    result = manage(config_file, "host", "register", "cmp-1",
                    s.hosts[0]["url"], "--repin")
    assert result.returncode == 0, result.stderr
    result = es.engine(conf).reconcile_pool(1)
    assert result.converged and result.state == "active"


def test_pool_plan_stops_at_a_rotated_certificate_before_login(
        sim, conf, config_file):
    s = sim(2)
    form_pool(s, conf)
    s.rotate_certificate("xs01")
    s.reset_call_log()
    result = manage(config_file, "pool", "plan", "1", "--format", "json")
    assert "TLS_PIN_MISMATCH" in result.stdout
    assert logins(s, s.hosts[0]) == []


def test_repin_makes_the_hosts_pools_due_now(sim, conf, config_file):
    s = sim(2)
    form_pool(s, conf)
    s.rotate_certificate("xs01")
    es.engine(conf).reconcile_pool(1)
    db_api.mark_due(1, when=timeutils.utcnow() + datetime.timedelta(hours=1))
    assert 1 not in db_api.list_due_pools()
    manage(config_file, "host", "register", "cmp-1", s.hosts[0]["url"],
           "--repin")
    assert 1 in db_api.list_due_pools()


def test_a_wrong_pin_sends_no_login(sim, conf):
    s = sim(1)
    names = register_unpinned(s)
    db_api.set_host_fingerprint(names[0], WRONG)
    es.want(1, "tls-pool", names)
    assert not es.engine(conf).reconcile_pool(1).converged
    assert es.members(1)["cmp-1"]["error_code"] == "TLS_PIN_MISMATCH"
    assert s.call_log == []


def test_a_redirection_is_checked_against_the_masters_own_pin(sim, conf):
    s = sim(2)
    form_pool(s, conf)
    db_api.set_host_fingerprint("cmp-1", WRONG)
    s.reset_call_log()
    session = xsession.SessionCache(conf).fresh(s.hosts[1]["url"],
                                                follow_master=True)
    with pytest.raises(errors.XapiError) as info:
        session.login()
    assert info.value.code == "TLS_PIN_MISMATCH"
    assert info.value.params[0] == WRONG
    # The slave (pinned right) was asked and named its master; the master
    # never saw a login.
    assert len(logins(s, s.hosts[1])) == 1
    assert logins(s, s.hosts[0]) == []


def test_pinned_master_credentials_never_go_to_an_unverified_joiner(
        sim, conf):
    s = sim(2)
    names = register_pinned(s)
    # cmp-2 registered over plain http (the simulator answers both).
    db_api.register_host("cmp-2", s.hosts[1]["url"].replace("https://",
                                                             "http://"))
    db_api.set_host_fingerprint("cmp-2", None)
    es.want(1, "tls-pool", names)
    es.engine(conf).reconcile_pool(1)
    assert es.members(1)["cmp-2"]["state"] == "error"
    assert es.members(1)["cmp-2"]["error_code"] == "TLS_UNVERIFIED_JOIN"
    assert es.calls(s, "pool.join") == []


def test_pinned_hosts_can_be_reached_with_verify_tls_off(sim, conf):
    s = sim(2)
    conf.set_override("verify_tls", False, group="xenserver")
    names = register_pinned(s)
    db_api.set_host_fingerprint(names[1], WRONG)
    es.want(1, "tls-pool", names)
    assert not es.engine(conf).reconcile_pool(1).converged
    assert es.members(1)["cmp-2"]["error_code"] == "TLS_PIN_MISMATCH"
    assert logins(s, s.hosts[1]) == []


# -- secrets ------------------------------------------------------------------

def test_no_password_in_logs_db_or_output_over_tls(
        sim, conf, config_file, mysql_url, caplog):
    caplog.set_level(logging.DEBUG)
    s = sim(2)
    form_pool(s, conf)
    s.rotate_certificate("xs01")
    es.engine(conf).reconcile_pool(1)
    outputs = [manage(config_file, "--debug", *args) for args in (
        ("host", "check", "cmp-1", "--format", "json"),
        ("host", "register", "cmp-1", s.hosts[0]["url"], "--repin"),
        ("host", "show", "cmp-1", "--format", "json"),
        ("pool", "show", "1", "--format", "json"))]
    logged = "\n".join(caplog.handler.format(r) for r in caplog.records)
    assert "TLS_PIN_MISMATCH" in logged + support.dump_tables(mysql_url)
    assert es.PASSWORD not in logged
    assert es.PASSWORD not in support.dump_tables(mysql_url)
    for out in outputs:
        assert es.PASSWORD not in out.stdout + out.stderr


def test_repin_clears_the_pin_mismatch_recorded_on_the_member(
        sim, conf, config_file):
    s = sim(2)
    form_pool(s, conf)
    s.rotate_certificate("xs01")
    assert not es.engine(conf).reconcile_pool(1).converged
    assert es.members(1)["cmp-1"]["error_code"] == "TLS_PIN_MISMATCH"
    result = manage(config_file, "host", "register", "cmp-1",
                    s.hosts[0]["url"], "--repin")
    assert result.returncode == 0, result.stderr
    result = es.engine(conf).reconcile_pool(1)
    member = es.members(1)["cmp-1"]
    assert result.converged and result.state == "active"
    assert (member["state"], member["error_code"], member["error_params"]) \
        == ("active", None, None)
