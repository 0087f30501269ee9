"""poolmgr-manage on bad input and bad databases: one clear line."""

import datetime
import os
import subprocess
import sys

import pytest

from poolmgr.db import api as db_api
from poolmgr.db import migration

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")
SYNC_HINT = "run `poolmgr-manage db sync`"


@pytest.fixture
def empty_config(tmp_path, mysql_empty_url):
    """A config on a MariaDB database that has no schema."""
    path = tmp_path / "poolmgr.conf"
    path.write_text("[database]\nconnection = %s\n" % mysql_empty_url)
    return str(path)


@pytest.fixture
def config(tmp_path, mysql_url):
    """A config on a MariaDB database at head; db.api points at it too."""
    path = tmp_path / "poolmgr.conf"
    path.write_text("[database]\nconnection = %s\n" % mysql_url)
    return str(path)


def manage(config_file, *args):
    return subprocess.run([BIN, "--config-file", config_file] + list(args),
                          capture_output=True, text=True, timeout=120)


def _one_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("args", [
    ("pool", "list"), ("pool", "show", "1"), ("status",), ("events", "list"),
    ("host", "register", "xs01", "http://127.0.0.11:8080/")])
def test_missing_schema_says_run_db_sync(empty_config, args):
    result = manage(empty_config, *args)
    assert result.returncode == 1
    line = _one_line(result)
    assert SYNC_HINT in line
    assert "Error" not in line and "1146" not in line


def test_schema_behind_head_says_run_db_sync(empty_config, mysql_empty_url):
    db_api.configure_url(mysql_empty_url)
    migration.upgrade("0001")
    result = manage(empty_config, "pool", "list")
    assert result.returncode == 1
    assert SYNC_HINT in _one_line(result)
    assert "revision 0001" in result.stderr


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_host_register_rejects_bad_host_name_as_usage(config, name):
    result = manage(config, "host", "register", name,
                    "http://127.0.0.11:8080/")
    assert result.returncode == 2
    assert "COMPUTE_HOST" in _one_line(result)
    assert db_api.list_hosts() == []


def test_host_register_accepts_a_255_character_name(config):
    result = manage(config, "host", "register", "x" * 255,
                    "http://127.0.0.11:8080/")
    assert result.returncode == 0, result.stderr
    assert [h["compute_host"] for h in db_api.list_hosts()] == ["x" * 255]


@pytest.mark.parametrize("url", ["http://127.0.0.11:0/",
                                 "http://127.0.0.11:65536/",
                                 "http://127.0.0.11:99999/",
                                 "http://127.0.0.11:-1/"])
def test_host_register_rejects_port_out_of_range_as_usage(config, url):
    result = manage(config, "host", "register", "xs01", url)
    assert result.returncode == 2
    assert "1 to 65535" in _one_line(result)
    assert db_api.list_hosts() == []


def test_host_register_rejects_unparsable_url_as_usage(config):
    result = manage(config, "host", "register", "xs01", "http://[::1/")
    assert result.returncode == 2
    assert "cannot be parsed" in _one_line(result)


def _pool_not_due_for_an_hour(aggregate_id):
    later = datetime.datetime.utcnow() + datetime.timedelta(hours=1)
    db_api.update_pool(aggregate_id, due_at=later)
    return later


def test_registering_a_host_makes_the_pools_wanting_it_due_now(config):
    db_api.put_aggregate(1, "pool-a", ["xs01"], {"hypervisor_pool": "true"})
    db_api.put_aggregate(2, "pool-b", ["xs02"], {"hypervisor_pool": "true"})
    later = _pool_not_due_for_an_hour(1)
    _pool_not_due_for_an_hour(2)
    db_api.register_host("xs01", "http://127.0.0.11/")
    assert db_api.get_pool(1)["due_at"] < later
    assert db_api.get_pool(2)["due_at"] >= later


def test_re_registering_a_host_makes_the_pools_wanting_it_due_now(config):
    db_api.register_host("xs01", "http://127.0.0.11/")
    db_api.put_aggregate(1, "pool-a", ["xs01"], {"hypervisor_pool": "true"})
    later = _pool_not_due_for_an_hour(1)
    db_api.register_host("xs01", "http://127.0.0.12/")
    assert db_api.get_pool(1)["due_at"] < later


def test_pool_retry_of_a_host_not_in_the_aggregate_fails(config):
    db_api.put_aggregate(1, "pool-a", ["xs01"], {"hypervisor_pool": "true"})
    result = manage(config, "pool", "retry", "1", "xs09")
    assert result.returncode == 1
    line = _one_line(result)
    assert "xs09 is not in aggregate 1 (pool-a)" in line
    assert "cleared" not in result.stdout


def test_pool_retry_refusal_does_not_list_a_leaving_member_as_in_the_aggregate(
        config):
    db_api.put_aggregate(1, "pool-a", ["xs01"], {"hypervisor_pool": "true"})
    db_api.upsert_member(1, "xs02", state=db_api.MEMBER_ERROR,
                         error_code="EJECT_WOULD_DESTROY_COMPUTE_VM")
    line = _one_line(manage(config, "pool", "retry", "1", "xs09"))
    assert "aggregate hosts: xs01;" in line
    assert "other members of its pool: xs02" in line


def test_pool_retry_of_a_member_in_error_clears_it(config):
    db_api.put_aggregate(1, "pool-a", ["xs01"], {"hypervisor_pool": "true"})
    db_api.upsert_member(1, "xs01", state=db_api.MEMBER_ERROR,
                         error_code="HOST_HAS_RESIDENT_VMS")
    result = manage(config, "pool", "retry", "1", "xs01")
    assert result.returncode == 0, result.stderr
    assert "1 member error(s) cleared" in result.stdout
    assert db_api.list_members(1)[0]["state"] == db_api.MEMBER_PENDING


def test_output_into_a_closed_pipe_prints_no_error(config):
    # `poolmgr-manage events list | head -1`: the reader has gone.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([BIN, "--config-file", config, "status"],
                                stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    finally:
        os.close(write_end)
    assert result.stderr == ""
