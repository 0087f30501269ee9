"""poolmgr-manage pool promote: the checks before a request is recorded."""

import json

from poolmgr.db import api as db_api
from poolmgr import events


def _want(hosts):
    db_api.put_aggregate(1, "pool-a", hosts, {events.POOL_FLAG: "true"},
                         uuid="0b5c37a5-0000-4000-8000-000000000001")


def test_promote_without_the_confirmation_is_a_one_line_usage_error(manage):
    _want(["cmp1", "cmp2"])
    result = manage("pool", "promote", "pool-a")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "poolmgr-manage: pool promote needs --confirm-master-fenced: "
        "confirm that the lost master is powered off (two masters corrupt "
        "the pool)"]
    assert db_api.get_pool(1)["promote_request"] is None


def test_promote_of_a_pool_that_is_not_master_lost_fails(manage):
    _want(["cmp1", "cmp2"])
    result = manage("pool", "promote", "pool-a", "--confirm-master-fenced")
    assert result.returncode == 1
    assert "is created, not master_lost: nothing to promote" in result.stderr
    assert db_api.get_pool(1)["promote_request"] is None


def test_promote_refuses_a_successor_outside_the_aggregate_or_the_lost_one(
        manage):
    _want(["cmp1", "cmp2", "cmp3"])
    db_api.update_pool(1, state=db_api.POOL_MASTER_LOST, master="cmp1")
    outside = manage("pool", "promote", "pool-a", "--host", "cmp9",
                     "--confirm-master-fenced")
    assert outside.returncode == 1 and "cmp9 is not in aggregate" in \
        outside.stderr
    itself = manage("pool", "promote", "pool-a", "--host", "cmp1",
                    "--confirm-master-fenced")
    assert itself.returncode == 1 and "the lost master itself" in \
        itself.stderr
    assert db_api.get_pool(1)["promote_request"] is None


def test_promote_records_the_request_for_the_daemon_and_shows_it(manage):
    _want(["cmp1", "cmp2", "cmp3"])
    db_api.update_pool(1, state=db_api.POOL_MASTER_LOST, master="cmp1",
                       due_at=None)
    result = manage("pool", "promote", "pool-a", "--host", "cmp3",
                    "--confirm-master-fenced")
    assert result.returncode == 0, result.stderr
    assert "promotion of cmp3 requested (lost master cmp1)" in result.stdout
    pool = db_api.get_pool(1)
    assert pool["promote_request"]["host"] == "cmp3"
    assert pool["due_at"] is not None
    shown = json.loads(manage("pool", "show", "pool-a", "--format",
                              "json").stdout)
    assert shown["promote_request"]["host"] == "cmp3"
    assert shown["state"] == "master_lost"


def test_promote_of_an_ha_pool_is_refused(manage):
    _want(["cmp1", "cmp2"])
    db_api.update_pool(1, state=db_api.POOL_MASTER_LOST, master="cmp1",
                       ha_enabled=True)
    result = manage("pool", "promote", "pool-a", "--confirm-master-fenced")
    assert result.returncode == 1 and "xapi HA is enabled" in result.stderr
    assert db_api.get_pool(1)["promote_request"] is None


def test_retry_makes_a_fenced_old_master_pending_again(manage):
    _want(["cmp1", "cmp2"])
    db_api.upsert_member(1, "cmp1", state=db_api.MEMBER_FENCED)
    result = manage("pool", "retry", "pool-a", "cmp1")
    assert result.returncode == 0, result.stderr
    states = {m["host"]: m["state"] for m in db_api.list_members(1)}
    assert states["cmp1"] == db_api.MEMBER_PENDING
