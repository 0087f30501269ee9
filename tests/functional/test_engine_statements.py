"""The engine's batched database reads answer as the one-at-a-time ones.

Real MariaDB. engine/observe.py checks the ownership of every standalone
host of a pass with one db_api.pool_claimants_many; it must give each pool
exactly what db_api.pool_claimants gives it alone.
"""

from poolmgr.db import api as db_api
from tests.functional import engine_support as es


def _world():
    es.want(1, "pool-a", ["cmp-1", "cmp-2"])
    es.want(2, "pool-c", ["cmp-1", "cmp-3"])
    es.want(3, "unflagged", ["cmp-2", "cmp-4"], flagged=False)
    es.want(4, "gone", ["cmp-3"], deleted=True)
    es.want(5, "pool-e", ["cmp-5"])
    db_api.upsert_member(1, "cmp-1", state=db_api.MEMBER_ACTIVE)
    db_api.upsert_member(2, "cmp-6", state=db_api.MEMBER_ACTIVE)
    db_api.upsert_member(5, "cmp-5", state=db_api.MEMBER_PENDING)
    db_api.claim_pool_uuid(1, "uuid-a")
    db_api.claim_pool_uuid(5, "uuid-e")


QUERIES = [("uuid-a", ["cmp-1"]), (None, ["cmp-3"]), ("uuid-e", []),
           ("uuid-x", ["cmp-4"]), (None, ["cmp-6", "cmp-2"]),
           ("uuid-a", ["cmp-1", "cmp-2", "cmp-3"]), (None, ["cmp-9"])]


def test_pool_claimants_many_answers_each_pool_as_pool_claimants(mysql_url):
    _world()
    single = [db_api.pool_claimants(uuid_, hosts) for uuid_, hosts in QUERIES]
    assert db_api.pool_claimants_many(QUERIES) == single


def test_pool_claimants_sees_uuid_members_and_desired_hosts(mysql_url):
    _world()
    assert db_api.pool_claimants("uuid-a", ["cmp-1", "cmp-2", "cmp-3"]) == [
        (1, "pool-a", frozenset(["cmp-1", "cmp-2"])),
        (2, "pool-c", frozenset(["cmp-1", "cmp-3"]))]
    assert db_api.pool_claimants("uuid-e", []) == [
        (5, "pool-e", frozenset())]
    assert db_api.pool_claimants(None, ["cmp-6"]) == [
        (2, "pool-c", frozenset(["cmp-6"]))]
    assert db_api.pool_claimants("uuid-x", ["cmp-4"]) == []
