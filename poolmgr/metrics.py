"""Prometheus text endpoint, computed from the database on every scrape.

NOTE(multiprocess): the daemon runs intake and reconciler workers as
separate cotyledon processes, and operators may run several daemons on one
database. Counters kept in process memory would be split across workers
and reset by every respawn. So poolmgr counts in MySQL: the ``counters``
table, bumped in the same transaction as the notification or journal row
it counts, and never reached by `db purge` (Prometheus ``_total`` never
goes backwards). A scrape reads that small table, the pools and the
newest notification time (an index lookup), whatever the size of the
logs; the figures are the same whichever worker or daemon serves them,
survive restarts, and need no ``PROMETHEUS_MULTIPROC_DIR``.

Families:

- ``poolmgr_notifications_total{event_type,outcome}``: aggregate
  notifications by outcome (applied, stale, recorded, ignored, rejected,
  and duplicate: redeliveries acked without a row).
- ``poolmgr_notifications_skipped_total``: messages that were not
  aggregate notifications (instance.*, compute.*, ...), acked unstored.
- ``poolmgr_reconcile_passes_total``: every pass takes the pool's lease
  once and bumps its fencing generation, so the sum of generations counts
  passes.
- ``poolmgr_operations_total{kind,status,xapi_code}``: journaled steps,
  ``started`` when begun and succeeded/failed/abandoned when finished.
- ``poolmgr_pools{state}`` and ``poolmgr_pools_live_migration_ready``.
- ``poolmgr_last_notification_timestamp_seconds``.
- ``poolmgr_nova_sync_runs_total{outcome}``,
  ``poolmgr_nova_sync_changes_total``, ``poolmgr_nova_sync_up``,
  ``poolmgr_nova_sync_last_success_timestamp_seconds``,
  ``poolmgr_nova_reflect_writes_total`` (poolmgr.nova.sync), once a sync ran.
- ``poolmgr_database_up``: 0 when the queries above failed (the other
  families are then absent from that scrape rather than wrong).
"""

import calendar
import socketserver
import threading
from wsgiref import simple_server

from oslo_log import log as logging
from prometheus_client import core
from prometheus_client import exposition
from prometheus_client import registry as prom_registry

from poolmgr.db import api as db_api

LOG = logging.getLogger(__name__)


def _epoch(value):
    return calendar.timegm(value.utctimetuple()) + value.microsecond / 1e6


class DatabaseCollector(prom_registry.Collector):
    """Builds every poolmgr metric family from the database."""

    def __init__(self, repository=db_api):
        self.db = repository

    def collect(self):
        try:
            families = list(self._families())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail
            LOG.warning("Metrics scrape could not read the database: %s",
                        type(exc).__name__)
            families, up = [], 0
        else:
            up = 1
        yield from families
        yield core.GaugeMetricFamily(
            "poolmgr_database_up",
            "1 when the last scrape could read poolmgr's database.", up)

    def _families(self):
        notes = core.CounterMetricFamily(
            "poolmgr_notifications",
            "Nova aggregate notifications received, by event type and "
            "outcome.", labels=["event_type", "outcome"])
        counts = dict(self.db.notification_counts())
        for event_type, count in self.db.duplicate_counts().items():
            counts[(event_type, self.db.DUPLICATE)] = count
        for (event_type, outcome), count in sorted(
                counts.items(),
                key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
            notes.add_metric([event_type or "", outcome], count)
        yield notes

        yield core.CounterMetricFamily(
            "poolmgr_notifications_skipped",
            "Messages on poolmgr's queue that were not aggregate "
            "notifications, acked without being stored.",
            self.db.skipped_count())

        pools = self.db.list_pools()
        passes = core.CounterMetricFamily(
            "poolmgr_reconcile_passes",
            "Reconcile passes over all pools (lease acquisitions).")
        passes.add_metric([], sum(p["generation"] or 0 for p in pools))
        yield passes

        ops = core.CounterMetricFamily(
            "poolmgr_operations",
            "Mutating steps in the journal, by kind, status and xapi error "
            "code.", labels=["kind", "status", "xapi_code"])
        for (kind, status, code), count in sorted(
                self.db.operation_counts().items(),
                key=lambda kv: tuple(str(x) for x in kv[0])):
            ops.add_metric([kind, status, code or ""], count)
        yield ops

        by_state = dict.fromkeys(db_api.POOL_STATES, 0)
        for pool in pools:
            by_state[pool["state"]] = by_state.get(pool["state"], 0) + 1
        states = core.GaugeMetricFamily(
            "poolmgr_pools", "Pools by state.", labels=["state"])
        for state, count in sorted(by_state.items()):
            states.add_metric([state], count)
        yield states

        yield core.GaugeMetricFamily(
            "poolmgr_pools_live_migration_ready",
            "Pools ready for live migration.",
            sum(1 for p in pools if p["live_migration_ready"]))

        last = self.db.last_notification_time()
        if last is not None:
            yield core.GaugeMetricFamily(
                "poolmgr_last_notification_timestamp_seconds",
                "When the newest notification was received (Unix time).",
                _epoch(last))

        if hasattr(self.db, "get_service_status"):
            # The Nova API sync (poolmgr.nova.sync): poolmgr_nova_sync_*.
            from poolmgr.nova import sync as novasync
            yield from novasync.metric_families(self.db)


def build_registry(repository=db_api):
    registry = prom_registry.CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(repository))
    return registry


class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):
        LOG.debug("metrics: " + format, *args)


def start_server(host, port, registry=None):
    """Serve /metrics in a background thread; return the server."""
    app = exposition.make_wsgi_app(registry or build_registry())
    server = simple_server.make_server(host, port, app,
                                       server_class=_ThreadingWSGIServer,
                                       handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever,
                              name="metrics-http", daemon=True)
    thread.start()
    LOG.info("Prometheus metrics on http://%s:%d/metrics", host,
             server.server_port)
    return server
