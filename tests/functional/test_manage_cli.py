"""poolmgr-manage through its installed entry point: db and host commands."""

import json
import os
import subprocess
import sys

import pytest

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")


@pytest.fixture
def config_file(tmp_path, mysql_empty_url):
    path = tmp_path / "poolmgr.conf"
    path.write_text("[database]\nconnection = %s\n" % mysql_empty_url)
    return str(path)


def manage(config_file, *args):
    return subprocess.run([BIN, "--config-file", config_file] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_db_sync_creates_schema_and_version_prints_head(config_file):
    from poolmgr.db import migration
    assert manage(config_file, "db", "version").stdout.startswith("None")
    result = manage(config_file, "db", "sync")
    assert result.returncode == 0, result.stderr
    version = manage(config_file, "db", "version")
    assert version.returncode == 0
    assert version.stdout.strip() == migration.head()
    assert manage(config_file, "db", "sync").returncode == 0


def test_host_register_list_remove_round_trip(config_file):
    manage(config_file, "db", "sync")
    reg = manage(config_file, "host", "register", "compute1",
                 "https://10.0.0.5/")
    assert reg.returncode == 0, reg.stderr
    listed = json.loads(manage(config_file, "host", "list", "--format",
                               "json").stdout)
    assert [(h["compute_host"], h["xapi_url"]) for h in listed] == [
        ("compute1", "https://10.0.0.5/")]
    table = manage(config_file, "host", "list").stdout
    assert "compute1" in table and "https://10.0.0.5/" in table
    assert manage(config_file, "host", "remove", "compute1").returncode == 0
    assert json.loads(manage(config_file, "host", "list", "--format",
                             "json").stdout) == []


@pytest.mark.parametrize("url", ["ftp://10.0.0.5/", "10.0.0.5",
                                 "http://", "https://root:pw@10.0.0.5/"])
def test_host_register_rejects_bad_url_with_usage_exit(config_file, url):
    manage(config_file, "db", "sync")
    result = manage(config_file, "host", "register", "compute1", url)
    assert result.returncode == 2
    assert "XAPI_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "pw" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_host_is_one_line_and_exit_1(config_file):
    manage(config_file, "db", "sync")
    for args in (("host", "remove", "nope"), ("host", "show", "nope")):
        result = manage(config_file, *args)
        assert result.returncode == 1
        assert result.stderr.strip() == \
            "poolmgr-manage: host nope is not registered"


def test_unreachable_database_is_one_line_without_password(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[database]\nconnection = "
                    "mysql+pymysql://root:s3cr3t@127.0.0.1:1/x\n")
    result = manage(str(path), "db", "version")
    assert result.returncode == 1
    assert "s3cr3t" not in result.stderr
    assert "Traceback" not in result.stderr
    assert "Can't connect" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(tmp_path):
    path = tmp_path / "x.conf"
    path.write_text("[database]\nconnection = sqlite://\n")
    assert manage(str(path), "bogus").returncode == 2
    assert manage(str(path), "host").returncode == 2
    assert manage(str(path), "host", "register", "only-one").returncode == 2
    assert manage(str(path), "events", "list", "--limit", "0"
                  ).returncode == 2
    missing = subprocess.run([BIN, "--config-file", str(tmp_path / "none"),
                              "db", "version"], capture_output=True,
                             text=True)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
