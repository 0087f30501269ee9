"""The daemon as an operator sees it: signals, secrets, metrics."""

import json
import signal
import time
import urllib.request


from poolmgr.db import api as db_api
from poolmgr.simulator import fakenova
from tests.functional import daemon_support as support


def _publish_pool(bus, hosts=3):
    nova = bus.nova()
    agg = nova.create_aggregate("pool-a")
    nova.set_metadata(agg, {"hypervisor_pool": "true"})
    for n in range(hosts):
        nova.add_host(agg, "xs%d" % n)
    return nova, agg


def test_sigterm_exits_zero_promptly(bus, daemon_factory):
    daemon = daemon_factory().start()
    nova, _ = _publish_pool(bus)
    support.recorded(len(nova.sent))
    code, took = daemon.stop()
    assert code == 0
    assert took < 10, "SIGTERM took %.1fs" % took


def test_sigterm_under_load_loses_nothing(bus, daemon_factory):
    daemon = daemon_factory().start()
    nova = bus.nova(formats=(fakenova.VERSIONED,))
    agg = nova.create_aggregate("busy")
    for n in range(150):
        nova.add_host(agg, "xs%03d" % n)
    code, took = daemon.stop()
    assert code == 0 and took < 20
    daemon_factory().start()
    support.recorded(len(nova.sent))
    assert len(db_api.get_aggregate(agg)["hosts"]) == 150
    # Each message stored exactly once: none lost, none stored twice.
    assert sum(db_api.notification_counts().values()) == len(nova.sent)
    assert support.wait_for(lambda: bus.queue_depth() == 0,
                            what="every message acked")


def test_secrets_never_reach_the_log_or_process_titles(bus, daemon_factory,
                                                       rabbit_url):
    daemon = daemon_factory(debug=True).start()
    nova, _ = _publish_pool(bus)
    bus.publish_raw(b"{garbage")
    support.recorded(len(nova.sent))
    titles = daemon.process_titles()
    daemon.signal(signal.SIGHUP)
    time.sleep(1)
    daemon.stop()
    log = daemon.log_text()
    assert "DEBUG" in log
    rabbit_password = rabbit_url.split("://", 1)[1].split("@")[0]
    rabbit_password = rabbit_password.split(":", 1)[1]
    for text in (log, titles):
        assert support.XAPI_SECRET not in text
        assert ":%s@" % rabbit_password not in text
    assert "poolmgr: master process" in titles
    assert "poolmgr: intake worker(0)" in titles
    assert "poolmgr: reconciler worker(0)" in titles


def _intake_done_with(bus, daemon, stored, marker, since):
    """Wait until the intake stored ``stored`` messages and logged ``marker``.

    The marker is a poison message published after the others were stored,
    so the intake's log lines for them precede its warning.
    """
    support.recorded(stored)
    bus.publish_raw({"oslo.version": "2.0", "oslo.message": json.dumps({
        "message_id": marker, "event_type": "aggregate.add_host.end",
        "priority": "INFO", "publisher_id": "x", "payload": 1,
        "timestamp": "2026-11-01 10:00:00"})})
    support.wait_for(lambda: "Rejected notification %s" % marker
                     in daemon.log_text()[since:], what=marker)


def test_sighup_reloads_log_level_without_restarting_workers(
        bus, daemon_factory):
    daemon = daemon_factory(debug=True).start()
    workers = daemon.children()
    nova, agg = _publish_pool(bus, hosts=1)
    _intake_done_with(bus, daemon, len(nova.sent), "probe-1", 0)
    # With debug on, the intake logs every notification at DEBUG.
    assert " DEBUG poolmgr.intake.endpoint " in daemon.log_text()
    daemon.set_option("debug = true", "debug = false")
    daemon.signal(signal.SIGHUP)
    support.wait_for(lambda: daemon.log_text().count(
        "Configuration reloaded") >= len(workers), what="reload")
    mark = len(daemon.log_text())
    nova.add_host(agg, "xs9")
    # probe-1 is stored too, as rejected.
    _intake_done_with(bus, daemon, len(nova.sent) + 1, "probe-2", mark)
    assert " DEBUG " not in daemon.log_text()[mark:]
    assert daemon.children() == workers
    assert daemon.stop()[0] == 0


def test_metrics_endpoint_reports_notifications_and_pools(bus,
                                                          daemon_factory):
    port = support.free_port()
    daemon_factory(metrics_port=port).start()
    nova, _ = _publish_pool(bus)
    bus.publish_raw({"oslo.version": "2.0", "oslo.message":
                     '{"message_id": "bad-1", "event_type": '
                     '"aggregate.add_host.end", "priority": "INFO", '
                     '"publisher_id": "x", "payload": 1, '
                     '"timestamp": "2026-11-01 10:00:00"}'})
    support.recorded(len(nova.sent) + 1)

    def scrape():
        try:
            with urllib.request.urlopen(
                    "http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return None

    text = support.wait_for(scrape, what="the metrics endpoint")
    assert ('poolmgr_notifications_total{event_type="aggregate.add_host.end"'
            ',outcome="applied"} 3.0') in text
    assert ('poolmgr_notifications_total{event_type="aggregate.add_host.end"'
            ',outcome="rejected"} 1.0') in text
    assert 'poolmgr_pools{state="created"} 1.0' in text
    assert "poolmgr_pools_live_migration_ready 0.0" in text
    assert "poolmgr_reconcile_passes_total" in text
    assert "poolmgr_database_up 1.0" in text
