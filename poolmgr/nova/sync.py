"""The desired-state sync and the reflection loop (the daemon's NovaSync).

``sync_once`` lists Nova's aggregates and folds them into the mirror
(db.api.apply_listing, ordering rules in poolmgr.plan.desired);
``Loop`` runs it at start-up and every ``[nova] sync_interval`` and, in
between, reflects the pools whose state changed (poolmgr.nova.reflect).
Nova unreachable or refusing
the credentials: one log line per failed sync, the daemon goes on from the
notifications, and ``status`` and ``/metrics`` show the last good sync.
"""

import calendar
import time

from oslo_log import log as logging
from oslo_utils import timeutils

from poolmgr.db import api as db_api
from poolmgr.nova import client as nova
from poolmgr.nova import reflect
from poolmgr import startup

LOG = logging.getLogger(__name__)

STATUS = "nova_sync"
# Seconds without reflection after Nova failed or refused a write.
REFLECT_PAUSE = 30
# Seconds between two looks for the binding while a sync is owed to it.
_OWED_LOOK = 0.5


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _record(**fields):
    current = (db_api.get_service_status(STATUS) or {}).get("value") or {}
    current = dict(current)
    for key in ("successes", "failures", "changes_total", "reflect_writes",
                "reflect_failures"):
        current.setdefault(key, 0)
    for key, value in fields.items():
        if key.startswith("add_"):
            current[key[4:]] = current.get(key[4:], 0) + value
        else:
            current[key] = value
    db_api.set_service_status(STATUS, current)
    return current


def sync_once(client, dry_run=False):
    """One sync: (Listing, changes). Raises nova.NovaError."""
    attempt = timeutils.utcnow()
    begun = time.monotonic()
    try:
        listing = client.list_aggregates()
    except nova.NovaError as exc:
        if not dry_run:
            _record(last_attempt_at=_iso(attempt), last_error=str(exc),
                    add_failures=1)
        raise
    changes = db_api.apply_listing(listing, dry_run=dry_run)
    if not dry_run:
        _record(last_attempt_at=_iso(attempt),
                last_success_at=_iso(listing.started_at), last_error=None,
                aggregates=len(listing.aggregates), changes=len(changes),
                duration_s=round(time.monotonic() - begun, 3),
                add_successes=1, add_changes_total=len(changes))
    return listing, changes


class Loop:
    """Sync now and every sync_interval; reflect every reflect_interval.

    ``intake_bound`` (a poolmgr.startup.IntakeBound, the daemon's): the
    first sync waits for it (NOTE(first-sync)).
    """

    def __init__(self, conf, client=None, intake_bound=None):
        self.conf = conf
        self.client = client
        self.intake_bound = intake_bound
        self._failing = False
        self._reflect_error = None
        self._reflect_paused_until = 0.0

    def _client(self):
        if self.client is None:
            self.client = nova.NovaClient(self.conf)
        return self.client

    def sync(self):
        try:
            listing, changes = sync_once(self._client())
        except nova.NovaError as exc:
            # NOTE(one-line): a sync that fails every interval logs one
            # warning, not a traceback; the daemon keeps working from the
            # notifications.
            LOG.warning("Nova API sync failed (notifications still "
                        "apply): %s", exc)
            self._failing = True
            return False
        if self._failing:
            LOG.info("Nova API sync works again")
            self._failing = False
        if self.conf.nova.reflect_metadata:
            healed = reflect.heal_from_listing(listing)
            if healed:
                LOG.info("Nova holds other poolmgr keys than written for "
                         "aggregate(s) %s; reflecting again",
                         ", ".join(str(i) for i in healed))
        LOG.info("Nova API sync: %d aggregate(s) listed, %d changed%s",
                 len(listing.aggregates), len(changes),
                 "".join(" [%s %s]" % (c["aggregate_id"], c["action"])
                         for c in changes[:20]))
        return True

    def reflect(self):
        if not self.conf.nova.reflect_metadata or (
                time.monotonic() < self._reflect_paused_until):
            return 0
        try:
            written, failed = reflect.reflect_all(self._client())
        except nova.NovaError as exc:
            # NOTE(backoff): Nova down or refusing: one warning per streak
            # of failures, and no new attempt for a while (not every
            # reflect_interval).
            if str(exc) != self._reflect_error:
                LOG.warning("Reflecting pool state into Nova failed (next "
                            "try in %ds): %s", REFLECT_PAUSE, exc)
            self._reflect_error = str(exc)
            self._reflect_paused_until = time.monotonic() + REFLECT_PAUSE
            return 0
        if self._reflect_error is not None:
            LOG.info("Reflecting pool state into Nova works again")
            self._reflect_error = None
        if written or failed:
            _record(add_reflect_writes=written, add_reflect_failures=failed)
        return written

    def _wait_for_intake(self, stopping):
        """Before the first sync: True when the queue is bound, False when
        the sync must run without it (and again once it is bound)."""
        wait = self.conf.nova.first_sync_wait
        LOG.info("Nova API sync: first sync once the intake's notification "
                 "queue is bound (waiting up to %.0fs)", wait)
        begun = time.monotonic()
        if startup.wait_for_intake(self.intake_bound, wait, stopping):
            LOG.info("Nova API sync: the intake's queue is bound (after "
                     "%.1fs); first sync", time.monotonic() - begun)
            return True
        if not stopping.is_set():
            LOG.warning("Nova API sync: the intake's queue is not bound "
                        "after %.0fs (is the message bus reachable?); "
                        "syncing now, and again as soon as it is bound",
                        wait)
        return False

    def run(self, stopping):
        """Until the ``stopping`` event is set."""
        # NOTE(first-sync): the first listing is asked for only once the
        # intake's queue is bound (poolmgr.startup), so a change Nova makes
        # while poolmgr starts is in that listing or in the queue. A bus
        # that is down must not leave the daemon without desired state, so
        # after [nova] first_sync_wait the sync runs anyway; what Nova
        # changes between that listing and the binding is then caught by
        # one more sync as soon as the queue is bound, not a sync_interval
        # later.
        owed = False
        if self.intake_bound is not None:
            owed = not self._wait_for_intake(stopping)
        next_sync = 0.0
        while not stopping.is_set():
            now = time.monotonic()
            try:
                if owed and self.intake_bound.is_set():
                    owed = False
                    LOG.info("Nova API sync: the intake's queue is bound "
                             "now; syncing again so that no change made "
                             "before it is missed")
                    next_sync = now
                if now >= next_sync:
                    next_sync = now + self.conf.nova.sync_interval
                    self.sync()
                self.reflect()
            except Exception as exc:  # noqa: BLE001 - e.g. the DB is down
                LOG.warning("Nova API sync loop: %s: %s",
                            type(exc).__name__, exc)
            wait = min(self.conf.nova.reflect_interval,
                       max(0.0, next_sync - time.monotonic()))
            stopping.wait(min(wait, _OWED_LOOK) if owed else wait)


def status_view(conf):
    """What ``status`` says about the Nova API sync."""
    if not nova.configured(conf):
        return {"configured": False}
    row = db_api.get_service_status(STATUS)
    value = dict((row or {}).get("value") or {})
    value["configured"] = True
    return value


def status_line(data):
    if not data.get("configured"):
        return "Nova API sync: not configured (notifications only)"
    if not data.get("last_attempt_at"):
        return "Nova API sync: configured, not run yet"
    line = "Nova API sync: last success %s" % (
        data.get("last_success_at") or "never")
    if data.get("last_success_at"):
        line += " (%s aggregates, %s changed)" % (data.get("aggregates"),
                                                  data.get("changes"))
    if data.get("last_error"):
        line += "; last attempt %s failed: %s" % (data["last_attempt_at"],
                                                  data["last_error"])
    return line


def _epoch_of(text):
    value = timeutils.normalize_time(timeutils.parse_isotime(text))
    return calendar.timegm(value.utctimetuple()) + value.microsecond / 1e6


def metric_families(repository=db_api):
    """poolmgr_nova_sync_* families for metrics.DatabaseCollector."""
    from prometheus_client import core
    row = repository.get_service_status(STATUS)
    if row is None:
        return
    value = row["value"] or {}
    runs = core.CounterMetricFamily(
        "poolmgr_nova_sync_runs",
        "Nova API desired-state syncs, by outcome.", labels=["outcome"])
    runs.add_metric(["success"], value.get("successes", 0))
    runs.add_metric(["failure"], value.get("failures", 0))
    yield runs
    yield core.CounterMetricFamily(
        "poolmgr_nova_sync_changes",
        "Aggregates the Nova API sync changed in the mirror.",
        value.get("changes_total", 0))
    yield core.GaugeMetricFamily(
        "poolmgr_nova_sync_up",
        "1 when the last Nova API sync succeeded.",
        0 if value.get("last_error") else 1)
    if value.get("last_success_at"):
        yield core.GaugeMetricFamily(
            "poolmgr_nova_sync_last_success_timestamp_seconds",
            "When the last successful Nova API listing was asked for "
            "(Unix time).", _epoch_of(value["last_success_at"]))
    yield core.CounterMetricFamily(
        "poolmgr_nova_reflect_writes",
        "Metadata writes into Nova aggregates (one API call each).",
        value.get("reflect_writes", 0))
