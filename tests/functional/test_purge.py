"""Retention on MariaDB: `db purge` and poolmgr.db.purge.

Rows are written through the repository functions the intake and the
engine use (so their counters are bumped as in production), then aged by
moving their timestamps back.
"""

import datetime
import json
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from poolmgr.db import api as db_api
from poolmgr.db import models
from poolmgr.db import purge
from poolmgr import events

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")
T0 = datetime.datetime(2026, 10, 1, 12, 0, 0)
OLD_DAYS = 40


def _event(n, aggregate_id=1, host=None):
    return events.AggregateEvent(
        message_id="m-%d" % n, event_type="aggregate.addhost.end",
        publisher_id="aggregate.%d" % aggregate_id,
        timestamp=T0 + datetime.timedelta(seconds=n), kind=events.ADD_HOST,
        phase=events.END, versioned=False, aggregate_id=aggregate_id,
        host=host or "cmp%d" % n)


def _age(table, column, ids=None, days=OLD_DAYS):
    """Move rows' ``column`` back by ``days`` (all rows, or those ``ids``)."""
    stmt = sa.update(table).values({column: sa.literal_column(
        "%s - INTERVAL %d DAY" % (column, days))})
    if ids is not None:
        stmt = stmt.where(table.c.id.in_(ids))
    with db_api.get_engine().begin() as conn:
        conn.execute(stmt)


def _notes():
    with db_api.get_engine().connect() as conn:
        return [r.message_id for r in conn.execute(
            sa.select(models.Notification.__table__).order_by(
                models.Notification.id))]


def _ops():
    with db_api.get_engine().connect() as conn:
        return [(r.id, r.aggregate_id, r.status) for r in conn.execute(
            sa.select(models.Operation.__table__).order_by(
                models.Operation.id))]


def _step(aggregate_id, status=db_api.OP_SUCCEEDED, code=None):
    op_id = db_api.journal_start(aggregate_id, "pool.join", host="cmp1")
    if status != db_api.OP_STARTED:
        db_api.journal_finish(op_id, status, xapi_error_code=code)
    return op_id


def _old_notifications(count):
    db_api.record_events([_event(n) for n in range(count)])
    _age(models.Notification.__table__, "received_at")


@pytest.fixture
def journal(mysql_url):
    """Pool 1: three finished steps and one open; pool 2: one finished.

    Everything is old except a recent finished step of pool 1.
    """
    ids = {"p1_done": [_step(1) for _ in range(3)],
           "p1_open": _step(1, db_api.OP_STARTED),
           "p2_only": _step(2, db_api.OP_FAILED, "HOST_OFFLINE")}
    table = models.Operation.__table__
    _age(table, "started_at")
    _age(table, "finished_at")
    ids["p1_recent"] = _step(1)
    return ids


def test_dry_run_deletes_nothing_and_reports_what_it_would(journal):
    _old_notifications(5)
    before_notes, before_ops = _notes(), _ops()
    report = purge.purge(30, 30, batch_size=2, dry_run=True)
    assert (_notes(), _ops()) == (before_notes, before_ops)
    # The newest notification is kept; the newest row of pool 2 and the
    # open row of pool 1 are kept; pool 1's newest is recent.
    assert report["notifications"]["would_delete"] == 4
    assert report["notifications"]["batches"] == 2
    assert report["operations"]["would_delete"] == 3
    assert "deleted" not in report["notifications"]


def test_old_notifications_are_deleted_in_batches(mysql_url):
    _old_notifications(7)
    report = purge.purge_notifications(purge.cutoff(30), batch_size=2)
    assert (report["deleted"], report["batches"]) == (6, 3)
    assert _notes() == ["m-6"]


def test_recent_notifications_are_kept(mysql_url):
    _old_notifications(3)
    db_api.record_events([_event(10), _event(11)])
    purge.purge_notifications(purge.cutoff(30))
    assert _notes() == ["m-10", "m-11"]


def test_open_rows_and_the_newest_row_of_each_pool_are_kept(journal):
    report = purge.purge_journal(purge.cutoff(30), batch_size=1)
    kept = {op_id for op_id, _, _ in _ops()}
    assert kept == {journal["p1_open"], journal["p2_only"],
                    journal["p1_recent"]}
    assert report["deleted"] == 3
    assert report["batches"] == 3
    assert (report["kept_open"], report["kept_newest_per_pool"]) == (1, 1)


def test_counters_do_not_move_when_rows_are_purged(journal):
    _old_notifications(4)
    db_api.record_events([_event(0)])  # a redelivery: a duplicate
    db_api.record_rejected(None, "aggregate.addhost.end", "aggregate.1",
                           "broken")
    counts = (db_api.notification_counts(), db_api.duplicate_counts(),
              db_api.operation_counts())
    assert counts[0][("aggregate.addhost.end", db_api.APPLIED)] == 4
    assert counts[2][("pool.join", db_api.OP_STARTED, None)] == 6
    _age(models.Notification.__table__, "received_at")
    purge.purge(30, 30)
    assert len(_notes()) == 1
    assert (db_api.notification_counts(), db_api.duplicate_counts(),
            db_api.operation_counts()) == counts


def test_a_stop_request_ends_the_purge_between_batches(mysql_url):
    import threading
    _old_notifications(6)
    stop = threading.Event()
    stop.set()
    report = purge.purge_notifications(purge.cutoff(30), batch_size=2,
                                       stop=stop)
    assert report["deleted"] == 0 and len(_notes()) == 6


@pytest.fixture
def config_file(tmp_path, mysql_url):
    path = tmp_path / "poolmgr.conf"
    path.write_text("[database]\nconnection = %s\n" % mysql_url)
    return str(path)


def _manage(config_file, *args):
    return subprocess.run([BIN, "--config-file", config_file] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_db_purge_prints_what_it_deleted_as_json(config_file, journal):
    _old_notifications(3)
    result = _manage(config_file, "db", "purge", "--older-than", "30",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is False
    assert report["notifications"]["deleted"] == 2
    assert report["operations"]["deleted"] == 3
    assert len(_notes()) == 1


def test_db_purge_dry_run_prints_what_it_would_delete(config_file, journal):
    result = _manage(config_file, "db", "purge", "--older-than", "30",
                     "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "journal: would delete 3 finished rows" in result.stdout
    assert len(_ops()) == 6


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_db_purge_refuses_an_age_that_is_not_a_positive_number(
        config_file, days):
    result = _manage(config_file, "db", "purge", "--older-than", days)
    assert result.returncode == 2
    assert "--older-than" in result.stderr


def _totals():
    from prometheus_client import exposition

    from poolmgr import metrics
    text = exposition.generate_latest(metrics.build_registry()).decode()
    return sorted(line for line in text.splitlines()
                  if line.startswith(("poolmgr_notifications",
                                      "poolmgr_operations"))
                  and "_created" not in line)


def _status(views):
    return views.status_view(views.all_pool_views(db_api.all_pool_rows()),
                             db_api.intake_totals())


def test_metrics_totals_and_status_do_not_move_when_rows_are_purged(journal):
    from poolmgr.cmd import views
    _old_notifications(3)
    db_api.count_skipped(41)
    before, status = _totals(), _status(views)
    assert 'poolmgr_notifications_skipped_total 41.0' in before
    assert any(line.startswith('poolmgr_operations_total{kind="pool.join",'
                               'status="succeeded"') for line in before)
    purge.purge(30, 30)
    assert len(_notes()) == 1
    assert _totals() == before
    after = _status(views)
    assert (after["notifications_by_outcome"],
            after["notifications_skipped"]) == (
        status["notifications_by_outcome"], 41)


def test_the_daemons_purge_service_applies_the_ttls(mysql_url):
    import threading

    from poolmgr import bootstrap
    from poolmgr import service
    from tests.functional import daemon_support as support
    _old_notifications(4)
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("connection", mysql_url, group="database")
    conf.set_override("notification_ttl", 30, group="database")
    purger = service.PurgeService(0, conf)
    purger.first_delay = (0.0, 0.0)
    worker = threading.Thread(target=purger.run, daemon=True)
    worker.start()
    try:
        support.wait_for(lambda: _notes() == ["m-3"], timeout=20,
                         what="the periodic purge")
    finally:
        purger.terminate()
        worker.join(10)
    assert not worker.is_alive()


@pytest.mark.parametrize("ttl, expected", [(30, True), (0, False)])
def test_the_daemon_runs_a_purge_process_only_with_a_ttl(
        bus, daemon_factory, ttl, expected):
    daemon = daemon_factory(
        extra="[database]\nnotification_ttl = %d\n" % ttl).start()
    from tests.functional import daemon_support as support
    if expected:
        support.wait_for(lambda: "purge" in daemon.process_titles(),
                         what="the purge worker")
    else:
        # The purge worker would be forked with the others, at start.
        support.wait_for(lambda: "reconciler" in daemon.process_titles()
                         and "intake" in daemon.process_titles(),
                         what="the daemon's workers")
        time.sleep(1)
        assert "purge" not in daemon.process_titles()
