"""The repositories' one import point: ``from poolmgr.db import api``.

Repository functions are the only place that reads and writes the tables;
each opens its own short transaction through oslo.db's enginefacade.
``configure(conf)`` (or ``configure_url(url)``) must run first; calling it
again points every repository at another database (tests do this).

They live one module per concern (ARCHITECTURE.md, ``poolmgr/db/``):

- ``session``: the enginefacade context (held there only), helpers
- ``states``: pool, member, journal and notification states
- ``mirror``: the aggregate mirror (merge_event, apply_listing)
- ``eventlog``: the notification log (record_events)
- ``inventory``: hosts; ``pools``: pools, members, due times, ownership
- ``leases``: fenced leases; ``journal``: the steps' before and after
- ``maintenance``: drains and rolling reboots
- ``counters``: monotonic totals; ``service_status``: per-service status
- ``overview``: the reads behind ``pool list|show`` and ``status``
- ``passread``: what a pass reads before it plans, in one SELECT

This module re-exports all of them, so ``db_api.X`` keeps working.
"""

from poolmgr.db import session
from poolmgr.db.session import (  # noqa: F401
    NotFound, _Ctx, configure, configure_url, _configure, is_configured,
    _context, _writer, _reader, get_engine, dispose, _now, _stamp, _row_dict,
    _clip, held_connection)
from poolmgr.db.states import (  # noqa: F401
    APPLIED, DUPLICATE, STALE, RECORDED, IGNORED, REJECTED, POOL_CREATED,
    POOL_CHANGING, POOL_ACTIVE, POOL_ERROR, POOL_DISMISSED, POOL_STATES,
    MEMBER_PENDING, MEMBER_PREFLIGHT, MEMBER_JOINING, MEMBER_ACTIVE,
    MEMBER_EJECTING, MEMBER_REMOVED, MEMBER_ERROR, OP_STARTED, OP_SUCCEEDED,
    OP_FAILED, OP_ABANDONED, POOL_MASTER_LOST, MEMBER_FENCED,
    MEMBER_DRAINING, MEMBER_DRAINED, MAINT_DRAIN,
    MAINT_UNDRAIN, MAINT_ROLLING_REBOOT, MAINT_RUNNING, MAINT_SUCCEEDED,
    MAINT_FAILED)
from poolmgr.db.maintenance import (  # noqa: F401
    OperationRunning, start_maintenance, running_maintenance,
    get_maintenance, latest_maintenance, update_maintenance)
from poolmgr.db.counters import (  # noqa: F401
    _SEP, NOTIFICATIONS, DUPLICATES, OPERATIONS, SKIPPED, _MAX_LABEL, _counter,
    _bump, add_counters, count_skipped, counter_values, duplicate_counts,
    skipped_count)
from poolmgr.db.mirror import (  # noqa: F401
    _apply_stamped, _SNAPSHOT, _unseen_is_absent, _derive, merge_event,
    _significant, _new_aggregate, _is_pool, _touch_pool, _touch_pools,
    get_aggregate, list_aggregates, find_aggregate, put_aggregate, _DryRun,
    _agg_view, apply_listing, _apply_listing_once)
from poolmgr.db.eventlog import (  # noqa: F401
    record_event, record_rejected, list_notifications, notification_counts,
    last_notification_time, _record_events_once, record_events)
from poolmgr.db.inventory import (  # noqa: F401
    register_host, _mark_pools_wanting_due, get_host, list_hosts, get_hosts,
    remove_host, set_host_xenserver_uuid, set_host_fingerprint,
    pins_for_address)
from poolmgr.db.pools import (  # noqa: F401
    get_pool, list_pools, update_pool, mark_due, list_due_pools, next_due_time,
    list_members, list_all_members, upsert_member, delete_member,
    retry_pool, set_reflected, add_members, request_promotion, write_members)
from poolmgr.db.ownership import (  # noqa: F401
    _IN_POOL_STATES, _like_json_string, pool_claimants, compute_hosts_by_uuid,
    claim_pool_uuid, pool_claimants_many)
from poolmgr.db.leases import (  # noqa: F401
    acquire_lease, renew_lease, check_lease, release_lease)
from poolmgr.db.journal import (  # noqa: F401
    journal_start, journal_finish, list_operations, unfinished_operations,
    get_aggregate_for_pass, operation_counts)
from poolmgr.db.passread import (  # noqa: F401
    PassRead, read_for_pass)
from poolmgr.db.service_status import (  # noqa: F401
    set_service_status, get_service_status)
from poolmgr.db.overview import (  # noqa: F401
    pool_rows, all_pool_rows, intake_totals)


def __getattr__(name):
    # NOTE(state): the context is module state of poolmgr.db.session; it is
    # forwarded, not copied, so db_api._CONTEXT is always the one in use.
    if name in ("_CONTEXT", "_LOCK"):
        return getattr(session, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
