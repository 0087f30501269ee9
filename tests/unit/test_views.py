"""``pool list``'s columns say what is true of each pool."""

from poolmgr.cmd import views


def _pool(members, desired, last_error_code=None):
    return {"aggregate_id": 1, "name": "pool-a", "state": "error",
            "master": "cmp-1", "live_migration_ready": False,
            "desired_hosts": desired, "last_error_code": last_error_code,
            "members": [{"host": h, "state": s, "error_code": c}
                        for h, s, c in members]}


def _row(pool):
    return views.pool_list_table([pool]).splitlines()[1].split()


def test_pool_list_names_each_error_code_once():
    pool = _pool([("cmp-1", "active", None),
                  ("cmp-2", "error", "EJECT_WOULD_DESTROY_COMPUTE_VM")],
                 ["cmp-1"], last_error_code="EJECT_WOULD_DESTROY_COMPUTE_VM")
    row = views.pool_list_table([pool]).splitlines()[1]
    assert row.count("EJECT_WOULD_DESTROY_COMPUTE_VM") == 1


def test_pool_list_counts_only_desired_hosts_as_members_done():
    # cmp-2 left the aggregate but is still active in the pool (not ejected
    # yet): one of one desired host is in, not "2/1".
    pool = _pool([("cmp-1", "active", None), ("cmp-2", "active", None)],
                 ["cmp-1"])
    assert _row(pool)[4] == "1/1"
