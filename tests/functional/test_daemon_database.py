"""The daemon on a database it cannot use: one line, not a traceback a poll."""

import time

import pytest

from poolmgr.db import api as db_api
from poolmgr.db import migration
from tests.functional import daemon_support as support

POLLS = "[reconciler]\npoll_interval = 0.1\n"


@pytest.fixture
def daemon_without_schema(tmp_path, bus, mysql_empty_url):
    daemon = support.Daemon(tmp_path, bus, mysql_empty_url, debug=False,
                            extra=POLLS)
    yield daemon, mysql_empty_url
    daemon.kill()


def _engine_lines(log, text):
    return [line for line in log.splitlines() if text in line]


def test_missing_schema_is_logged_once_and_its_return_once(
        daemon_without_schema):
    daemon, url = daemon_without_schema
    daemon.start()
    support.wait_for(lambda: _engine_lines(daemon.log_text(),
                                           "Database unusable"),
                     what="the engine to say the database is unusable")
    # Many polls later (poll_interval 0.1 s), still one line.
    time.sleep(2.0)
    log = daemon.log_text()
    unusable = _engine_lines(log, "Database unusable")
    assert len(unusable) == 1, unusable
    assert "run `poolmgr-manage db sync`" in unusable[0]
    assert "Could not look for due pools" not in log
    assert "Traceback" not in log
    db_api.configure_url(url)
    migration.upgrade()
    support.wait_for(lambda: _engine_lines(daemon.log_text(),
                                           "Database usable again"),
                     what="the engine to say the database is back")
    time.sleep(1.0)
    log = daemon.log_text()
    assert len(_engine_lines(log, "Database usable again")) == 1
    assert len(_engine_lines(log, "Database unusable")) == 1
    assert daemon.stop()[0] == 0
