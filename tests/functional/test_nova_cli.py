"""poolmgr-manage nova sync, host import and status against the real Nova."""

import json
import subprocess
import sys
import textwrap

from poolmgr.db import api as db_api
from poolmgr import events
from tests.functional import nova_support


def _config(tmp_path, mysql_url, nova=None, token=None):
    path = tmp_path / "poolmgr.conf"
    text = "[database]\nconnection = %s\n" % mysql_url
    if nova is not None:
        text += nova_support.nova_section(nova, token=token)
    path.write_text(text)
    return path


def _manage(config, *argv):
    return subprocess.run(
        [sys.executable, "-m", "poolmgr.cmd.manage", "--config-file",
         str(config), *argv], capture_output=True, text=True, timeout=120)


def _flagged(nova, name, hosts):
    agg = nova.create_aggregate(name)
    nova.set_metadata(agg["id"], {events.POOL_FLAG: "true"})
    for host in hosts:
        nova.add_host(agg["id"], host)
    return agg["id"]


def test_nova_sync_dry_run_prints_the_adoption_and_writes_nothing(
        nova, tmp_path, mysql_url):
    agg = _flagged(nova, "dry", ["compute2", "compute1"])
    out = _manage(_config(tmp_path, mysql_url, nova), "nova", "sync",
                  "--dry-run", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["dry_run"] is True
    assert [(c["aggregate_id"], c["action"], c["hosts"])
            for c in data["changes"]] == [(agg, "adopted",
                                           ["compute2", "compute1"])]
    assert db_api.get_aggregate(agg) is None
    assert db_api.get_pool(agg) is None


def test_nova_sync_adopts_and_marks_the_pool_due(nova, tmp_path, mysql_url):
    agg = _flagged(nova, "now", ["compute3", "compute1"])
    out = _manage(_config(tmp_path, mysql_url, nova), "nova", "sync")
    assert out.returncode == 0, out.stderr
    assert "aggregate %d (now): adopted; hosts added compute3, compute1" % (
        agg) in out.stdout
    assert db_api.get_aggregate(agg)["hosts"] == ["compute3", "compute1"]
    assert db_api.get_pool(agg)["due_at"] is not None


def test_second_nova_sync_reports_no_change(nova, tmp_path, mysql_url):
    _flagged(nova, "twice", ["compute1"])
    config = _config(tmp_path, mysql_url, nova)
    assert _manage(config, "nova", "sync").returncode == 0
    out = _manage(config, "nova", "sync", "--format", "json")
    assert json.loads(out.stdout)["changes"] == []


def test_nova_sync_deletes_an_aggregate_gone_from_nova(nova, tmp_path,
                                                       mysql_url):
    agg = _flagged(nova, "gone", [])
    config = _config(tmp_path, mysql_url, nova)
    assert _manage(config, "nova", "sync").returncode == 0
    nova.delete_aggregate(agg)
    out = _manage(config, "nova", "sync", "--format", "json")
    assert [(c["aggregate_id"], c["action"])
            for c in json.loads(out.stdout)["changes"]] == [(agg,
                                                             "deleted")]
    assert db_api.get_aggregate(agg)["deleted"] is True


def test_nova_sync_with_refused_credentials_is_one_line_exit_1(
        nova, tmp_path, mysql_url):
    out = _manage(_config(tmp_path, mysql_url, nova,
                          token="not-the-T0ken"), "nova", "sync")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "poolmgr-manage: Nova refused the credentials (GET /os-aggregates):"
        " HTTP 401"]
    assert "T0ken" not in out.stdout + out.stderr


def test_nova_sync_with_nova_stopped_is_one_line_exit_1(nova, tmp_path,
                                                        mysql_url):
    nova.pause_api()
    try:
        out = _manage(_config(tmp_path, mysql_url, nova), "nova", "sync")
    finally:
        nova.resume_api()
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Nova is unreachable" in lines[0]


def test_nova_sync_without_nova_section_says_not_configured(tmp_path,
                                                            mysql_url):
    out = _manage(_config(tmp_path, mysql_url), "nova", "sync")
    assert out.returncode == 1
    assert "[nova] is not configured" in out.stderr


def test_status_without_nova_section_says_not_configured(tmp_path,
                                                         mysql_url):
    out = _manage(_config(tmp_path, mysql_url), "status")
    assert out.returncode == 0, out.stderr
    assert "Nova API sync: not configured" in out.stdout


def test_host_import_registers_unregistered_computes_and_skips_known(
        nova, tmp_path, mysql_url):
    db_api.register_host("compute2", "https://10.0.0.2/")
    out = _manage(_config(tmp_path, mysql_url, nova), "host", "import",
                  "--url-template", "https://{host}.xen.example.org/",
                  "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [r["host"] for r in data["registered"]] == [
        h for h in sorted(nova.hosts) if h != "compute2"]
    assert [(s["host"], s["reason"]) for s in data["skipped"]] == [
        ("compute2", "already registered")]
    assert db_api.get_host("compute1")["xapi_url"] == \
        "https://compute1.xen.example.org/"
    assert db_api.get_host("compute2")["xapi_url"] == "https://10.0.0.2/"


def test_host_import_without_placeholder_is_a_usage_error(nova, tmp_path,
                                                          mysql_url):
    out = _manage(_config(tmp_path, mysql_url, nova), "host", "import",
                  "--url-template", "https://xen.example.org/")
    assert out.returncode == 2
    assert "{host}" in out.stderr
    assert db_api.list_hosts() == []


def test_nova_password_is_secret_in_the_generated_options():
    from poolmgr.conf import nova as nova_conf
    opts = {o.dest: o for o in nova_conf.list_opts()}
    assert opts["password"].secret is True
    assert {"auth_type", "auth_url", "endpoint_override", "region_name",
            "cafile", "insecure", "timeout", "sync_interval",
            "reflect_metadata"} <= set(opts)


def test_nova_password_is_not_logged_by_manage_debug(tmp_path, mysql_url):
    config = tmp_path / "poolmgr.conf"
    config.write_text("[database]\nconnection = %s\n" % mysql_url
                      + textwrap.dedent("""\
        [nova]
        auth_type = password
        auth_url = http://127.0.0.1:9/identity
        username = poolmgr
        password = Keyst0ne-S3cret
        project_name = service
        user_domain_name = Default
        project_domain_name = Default
        timeout = 2
        """))
    out = _manage(config, "--debug", "nova", "sync")
    assert out.returncode == 1
    assert "Keyst0ne-S3cret" not in out.stdout + out.stderr
    assert "Nova is unreachable" in out.stderr.strip().splitlines()[-1]
