"""The reads behind ``pool list|show`` and ``status`` (cmd/views formats).

Each returns plain rows; views turn them into the JSON contract and tables.
"""

from poolmgr.db import counters
from poolmgr.db import eventlog
from poolmgr.db import mirror
from poolmgr.db import pools


def pool_rows(aggregate_id):
    """(pool row or None, its member rows) of one aggregate."""
    pool = pools.get_pool(aggregate_id)
    members = pools.list_members(aggregate_id) if pool else []
    return pool, members


def all_pool_rows():
    """[(aggregate, pool, members)] of every pool whose aggregate is known,
    in pool order."""
    aggs = {a["id"]: a for a in mirror.list_aggregates()}
    members = {}
    for m in pools.list_all_members():
        members.setdefault(m["aggregate_id"], []).append(m)
    rows = []
    for pool in pools.list_pools():
        agg = aggs.get(pool["aggregate_id"])
        if agg is None:
            continue
        rows.append((agg, pool, members.get(agg["id"], [])))
    return rows


def intake_totals():
    """What ``status`` says about notifications, from the counters (a purge
    of the log never lowers them) and the log's newest row."""
    return {"notification_counts": eventlog.notification_counts(),
            "duplicate_counts": counters.duplicate_counts(),
            "skipped": counters.skipped_count(),
            "last_notification_at": eventlog.last_notification_time()}
