"""The daemon against a real Nova 34: desired-state sync and reflection.

Nova is the real control plane of tests/realnova (nova-api, conductor,
placement, fake-driver computes compute1..4); its notifications reach the
daemon through RabbitMQ as in production, and the daemon reads and writes
Nova through openstacksdk with [nova] auth_type = admin_token. XenServer is
the simulator.
"""

import json
import random
import time

import kombu

from poolmgr.db import api as db_api
from poolmgr import events
from tests.functional import daemon_support as support
from tests.functional import nova_support


def test_daemon_adopts_aggregates_created_before_its_first_start(
        nova, tmp_path, mysql_url, simulator):
    sim, _ = nova_support.simulated_computes(simulator)
    # Created while no poolmgr queue exists: no notification will ever
    # reach the daemon. compute2 is Nova's first host: the master.
    agg = nova_support.pool_aggregate(nova, "before-start",
                                      ["compute2", "compute1"])
    bus = nova_support.NovaBus(nova)
    daemon = support.Daemon(tmp_path, bus, mysql_url,
                            extra=nova_support.daemon_extra(
                                nova, reflect=False)).start()
    try:
        support.wait_for(
            lambda: nova_support.active(agg, ["compute1", "compute2"]),
            timeout=90, what="the adopted pool active")
        assert db_api.get_pool(agg)["master"] == "compute2"
        assert sim.role("xs02") == "master"
        assert sim.pool_uuid("xs01") == sim.pool_uuid("xs02")
        assert "Nova API sync: 1 aggregate(s) listed, 1 changed" in \
            daemon.log_text()
    finally:
        daemon.kill()
        bus.cleanup()


def test_sync_heals_changes_made_while_the_daemon_was_stopped(
        nova, tmp_path, mysql_url, simulator):
    sim, _ = nova_support.simulated_computes(simulator)
    bus = nova_support.NovaBus(nova)
    extra = nova_support.daemon_extra(nova, reflect=False)
    daemon = support.Daemon(tmp_path, bus, mysql_url, extra=extra).start()
    try:
        agg = nova_support.pool_aggregate(nova, "heal",
                                          ["compute1", "compute2"])
        support.wait_for(
            lambda: nova_support.active(agg, ["compute1", "compute2"]),
            timeout=90, what="the pool of compute1+2 active")
        assert daemon.stop()[0] == 0
        bus.delete_queue()
        # Lost: nobody listens while these are published.
        nova.add_host(agg, "compute3")
        nova.remove_host(agg, "compute2")
        daemon = support.Daemon(tmp_path, bus, mysql_url,
                                extra=extra).start()
        support.wait_for(
            lambda: nova_support.active(agg, ["compute1", "compute3"])
            and support.members(agg).get("compute2")
            == db_api.MEMBER_REMOVED,
            timeout=90, what="compute3 joined, compute2 out")
        assert sim.pool_uuid("xs03") == sim.pool_uuid("xs01")
        assert sim.pool_uuid("xs02") != sim.pool_uuid("xs01")
        assert db_api.get_aggregate(agg)["hosts"] == ["compute1",
                                                      "compute3"]
    finally:
        daemon.kill()
        bus.cleanup()


def _capture(nova, queue_name):
    """A queue on Nova's exchange that keeps its notifications for us."""
    exchange = kombu.Exchange(nova.exchange, type="topic", durable=True)
    conn = kombu.Connection(support.amqp_url(nova.transport_url))
    channel = conn.channel()
    queues = [kombu.Queue(queue_name + "-" + topic, exchange=exchange,
                          routing_key=topic + ".info", durable=False,
                          auto_delete=False, channel=channel)
              for topic in (nova.versioned_topic, nova.legacy_topic)]
    for queue in queues:
        queue.declare()
    return conn, channel, queues


def _drain(channel, queues):
    bodies = []
    for queue in queues:
        while True:
            message = queue.get(no_ack=True)
            if message is None:
                break
            envelope = json.loads(message.body)
            inner = json.loads(envelope["oslo.message"])
            if inner["event_type"].startswith("aggregate."):
                bodies.append((queue.routing_key, message.body))
    return bodies


def test_master_is_novas_first_host_under_shuffled_notifications(
        nova, tmp_path, mysql_url, simulator):
    sim, _ = nova_support.simulated_computes(simulator)
    conn, channel, queues = _capture(nova, "pmtest-capture")
    try:
        agg = nova_support.pool_aggregate(nova, "shuffled",
                                          ["compute2", "compute1"])
        nova.remove_host(agg, "compute2")
        nova.add_host(agg, "compute2")
        assert nova.get_aggregate(agg)["hosts"] == ["compute1", "compute2"]
        captured = _drain(channel, queues)
    finally:
        for queue in queues:
            queue.delete()
        conn.release()
    assert len(captured) >= 20
    bus = nova_support.NovaBus(nova)
    daemon = support.Daemon(tmp_path, bus, mysql_url,
                            extra=nova_support.daemon_extra(
                                nova, reflect=False)).start()
    try:
        # Nova's real notifications, older than the start-up listing,
        # delivered shuffled: compute2 was the first host ever added.
        random.Random(13).shuffle(captured)
        with kombu.Connection(support.amqp_url(nova.transport_url)) as pub:
            producer = pub.Producer()
            for routing_key, body in captured:
                producer.publish(body, exchange=nova.exchange,
                                 routing_key=routing_key,
                                 content_type="application/json",
                                 content_encoding="utf-8", declare=[])
        support.recorded(len(captured))
        support.wait_for(
            lambda: nova_support.active(agg, ["compute1", "compute2"]),
            timeout=90, what="the pool active")
        assert db_api.get_pool(agg)["master"] == "compute1"
        assert sim.role("xs01") == "master"
        assert db_api.get_aggregate(agg)["hosts"] == ["compute1",
                                                      "compute2"]
    finally:
        daemon.kill()
        bus.cleanup()


def _update_metadata_ends(aggregate_id):
    return sum(1 for n in db_api.list_notifications(limit=10000)
               if n["aggregate_id"] == aggregate_id
               and n["event_type"] == "aggregate.update_metadata.end")


def _reflect_writes():
    row = db_api.get_service_status("nova_sync")
    return ((row or {}).get("value") or {}).get("reflect_writes", 0)


def _owned(metadata):
    return {k: v for k, v in metadata.items()
            if k not in (events.POOL_FLAG, "note")}


def test_metadata_follows_joins_ejects_and_dismissal_without_a_loop(
        nova, tmp_path, mysql_url, simulator):
    sim, uuids = nova_support.simulated_computes(simulator)
    bus = nova_support.NovaBus(nova)
    daemon = support.Daemon(tmp_path, bus, mysql_url,
                            extra=nova_support.daemon_extra(nova)).start()
    try:
        base = len(nova.api_calls("POST", "/action"))
        agg = nova_support.pool_aggregate(
            nova, "reflected", ["compute1", "compute2", "compute3"],
            extra_metadata={"note": "operator's own"})
        full = {"operational_state": "active", "master_compute": "compute1",
                "compute1": uuids["compute1"], "compute2": uuids["compute2"],
                "compute3": uuids["compute3"]}
        support.wait_for(lambda: _owned(nova.get_aggregate(agg)[
            "metadata"]) == full, timeout=90, what="the active pool in Nova")
        assert nova.get_aggregate(agg)["metadata"]["note"] == \
            "operator's own"
        # No feedback loop: Nova's update_metadata notifications for
        # poolmgr's own writes neither mark the pool due nor cause writes.
        support.wait_for(lambda: _update_metadata_ends(agg)
                         == 1 + _reflect_writes(), timeout=30,
                         what="the notifications of every write")
        writes = _reflect_writes()
        passes = db_api.get_pool(agg)["generation"]
        calls = len(nova.api_calls("POST", "/action")) - base
        time.sleep(3)
        assert _reflect_writes() == writes
        assert db_api.get_pool(agg)["generation"] == passes
        assert len(nova.api_calls("POST", "/action")) - base == calls
        # One API call per reflected change: every POST .../action beyond
        # the test's own (1 set_metadata + 3 add_host) is one write.
        assert calls == 4 + writes

        nova.remove_host(agg, "compute2")
        left = dict(full)
        del left["compute2"]
        support.wait_for(lambda: _owned(nova.get_aggregate(agg)[
            "metadata"]) == left, timeout=90, what="compute2's key removed")
        assert support.members(agg)["compute2"] == db_api.MEMBER_REMOVED

        # Hand-over: the master leaves, compute3 takes over.
        nova.remove_host(agg, "compute1")
        support.wait_for(lambda: _owned(nova.get_aggregate(agg)[
            "metadata"]) == {"operational_state": "active",
                             "master_compute": "compute3",
                             "compute3": uuids["compute3"]},
            timeout=120, what="compute3 the master in Nova")
        assert sim.role("xs03") == "master"

        nova.set_metadata(agg, {events.POOL_FLAG: None})
        support.wait_for(lambda: nova.get_aggregate(agg)["metadata"] == {
            "operational_state": "dismissed", "note": "operator's own"},
            timeout=90, what="the dismissed pool in Nova")
        assert db_api.get_pool(agg)["state"] == db_api.POOL_DISMISSED
    finally:
        daemon.kill()
        bus.cleanup()


def test_nova_down_during_a_sync_leaves_the_daemon_on_notifications(
        nova, tmp_path, mysql_url, simulator):
    sim, _ = nova_support.simulated_computes(simulator, hosts=2)
    bus = nova_support.NovaBus(nova)
    metrics_port = support.free_port()
    daemon = support.Daemon(tmp_path, bus, mysql_url,
                            metrics_port=metrics_port,
                            extra=nova_support.daemon_extra(
                                nova, sync_interval=2, reflect=False))
    daemon.start()
    try:
        support.wait_for(lambda: "Nova API sync: 0 aggregate(s)"
                         in daemon.log_text(), timeout=60,
                         what="a first successful sync")
        nova.pause_api()
        support.wait_for(lambda: "Nova API sync failed" in daemon.log_text(),
                         timeout=60, what="the failed sync logged")
        # Notifications still apply (published here as Nova would: the
        # paused nova-api cannot).
        fake = bus.nova(first_id=90000)
        agg = fake.create_aggregate("while-nova-is-down")
        fake.set_metadata(agg, {events.POOL_FLAG: "true"})
        fake.add_host(agg, "compute1")
        fake.add_host(agg, "compute2")
        support.wait_for(
            lambda: nova_support.active(agg, ["compute1", "compute2"]),
            timeout=90, what="a pool from notifications alone")
        status = json.loads(_manage(daemon, "status", "--format", "json"))
        sync = status["nova_sync"]
        assert sync["last_success_at"] and sync["last_error"]
        assert "unreachable" in sync["last_error"]
        text = _manage(daemon, "status")
        assert "Nova API sync: last success" in text
        assert "failed: Nova is unreachable" in text
        scrape = _scrape(metrics_port)
        assert "poolmgr_nova_sync_up 0.0" in scrape
        assert 'poolmgr_nova_sync_runs_total{outcome="failure"}' in scrape
        failures = [line for line in daemon.log_text().splitlines()
                    if "Nova API sync failed" in line]
        assert all("Traceback" not in line for line in failures)
    finally:
        nova.resume_api()
        daemon.kill()
        bus.cleanup()


def _manage(daemon, *argv):
    import subprocess
    import sys
    out = subprocess.run(
        [sys.executable, "-m", "poolmgr.cmd.manage", "--config-file",
         str(daemon.config), *argv], capture_output=True, text=True,
        timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _scrape(port):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as resp:
        return resp.read().decode()


def test_refused_credentials_are_one_log_line_and_notifications_apply(
        nova, tmp_path, mysql_url, simulator):
    nova_support.simulated_computes(simulator, hosts=2)
    bus = nova_support.NovaBus(nova)
    daemon = support.Daemon(
        tmp_path, bus, mysql_url, extra=nova_support.daemon_extra(
            nova, sync_interval=600, token="Wr0ng-T0ken-x")).start()
    try:
        support.wait_for(lambda: "Nova API sync failed" in daemon.log_text(),
                         timeout=60, what="the refused sync logged")
        fake = bus.nova(first_id=91000)
        agg = fake.create_aggregate("refused-credentials")
        fake.set_metadata(agg, {events.POOL_FLAG: "true"})
        fake.add_host(agg, "compute1")
        fake.add_host(agg, "compute2")
        support.wait_for(
            lambda: nova_support.active(agg, ["compute1", "compute2"]),
            timeout=90, what="a pool from notifications alone")
        lines = [line for line in daemon.log_text().splitlines()
                 if "Nova API sync failed" in line]
        assert len(lines) == 1
        assert "Nova refused the credentials (GET /os-aggregates): " \
               "HTTP 401" in lines[0]
        assert "Wr0ng-T0ken" not in daemon.log_text()
        assert "Nova API sync: last success never" in _manage(daemon,
                                                              "status")
    finally:
        daemon.kill()
        bus.cleanup()
