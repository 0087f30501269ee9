"""Migration 0002 seeds the counters from the rows already logged (MySQL)."""

import datetime

import pytest
import sqlalchemy as sa

from poolmgr.db import api as db_api
from poolmgr.db import migration

_T = datetime.datetime(2026, 11, 30, 12, 0, 0)

# (event_type, outcome, rows) logged by a 0001 poolmgr.
_NOTIFICATIONS = [
    ("aggregate.add_host.end", "applied", 3),
    ("aggregate.add_host.start", "recorded", 2),
    ("aggregate.addhost.end", "stale", 1),
    ("aggregate.create.end", "ignored", 1),
    ("aggregate.add_host.end", "rejected", 2),
    ("bogus.thing", "rejected", 1),
    (None, "rejected", 1),
]
# (kind, status, xapi_error_code, rows)
_OPERATIONS = [
    ("join", "succeeded", None, 2),
    ("join", "failed", "HOSTS_NOT_HOMOGENEOUS", 1),
    ("join", "abandoned", None, 1),
    ("eject", "started", None, 1),
]


@pytest.fixture
def upgraded_from_0001(mysql_empty_url):
    """Rows written at revision 0001, then `db sync` to head."""
    db_api.configure_url(mysql_empty_url)
    migration.upgrade("0001")
    engine = db_api.get_engine()
    with engine.begin() as conn:
        n = 0
        for event_type, outcome, rows in _NOTIFICATIONS:
            for _ in range(rows):
                n += 1
                conn.execute(sa.text(
                    "INSERT INTO notifications (message_id, event_type, "
                    "outcome, received_at) VALUES (:m, :e, :o, :t)"),
                    {"m": "msg-%d" % n, "e": event_type, "o": outcome,
                     "t": _T})
        for kind, status, code, rows in _OPERATIONS:
            for _ in range(rows):
                conn.execute(sa.text(
                    "INSERT INTO operations (aggregate_id, kind, status, "
                    "attempts, xapi_error_code, started_at) VALUES "
                    "(1, :k, :s, 1, :c, :t)"),
                    {"k": kind, "s": status, "c": code, "t": _T})
    migration.upgrade()
    return mysql_empty_url


def test_upgrade_seeds_notification_counters_from_the_log(
        upgraded_from_0001):
    assert db_api.notification_counts() == {
        ("aggregate.add_host.end", "applied"): 3,
        ("aggregate.add_host.start", "recorded"): 2,
        ("aggregate.addhost.end", "stale"): 1,
        ("aggregate.create.end", "ignored"): 1,
        ("aggregate.add_host.end", "rejected"): 2,
        # unknown and missing event types are filed under "other"
        ("other", "rejected"): 2,
    }


def test_upgrade_seeds_operation_counters_from_the_journal(
        upgraded_from_0001):
    assert db_api.operation_counts() == {
        ("join", "started", None): 4,
        ("join", "succeeded", None): 2,
        ("join", "failed", "HOSTS_NOT_HOMOGENEOUS"): 1,
        ("join", "abandoned", None): 1,
        ("eject", "started", None): 1,
    }


def test_upgrade_seeds_totals_equal_to_the_group_by(upgraded_from_0001):
    with db_api.get_engine().connect() as conn:
        logged = conn.execute(sa.text(
            "SELECT COUNT(*) FROM notifications")).scalar()
        journaled = conn.execute(sa.text(
            "SELECT COUNT(*) FROM operations")).scalar()
    assert sum(db_api.notification_counts().values()) == logged
    assert sum(v for (_, status, _), v in db_api.operation_counts().items()
               if status == "started") == journaled


def test_code_counts_on_top_of_the_seeded_counters(upgraded_from_0001):
    db_api.record_rejected("msg-new", "bogus.other", "x", "test",
                           label="other")
    db_api.journal_start(1, "join", host="h1")
    assert db_api.notification_counts()[("other", "rejected")] == 3
    assert db_api.operation_counts()[("join", "started", None)] == 5


def test_upgrade_of_an_empty_database_has_no_counters(mysql_empty_url):
    db_api.configure_url(mysql_empty_url)
    migration.upgrade()
    assert db_api.counter_values() == {}
