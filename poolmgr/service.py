"""The daemon's cotyledon services and its ServiceManager.

One service per worker kind: the intake (Nova's notifications into the
database), the reconciler (the pool engine), the metrics endpoint, the
purge of expired rows and the Nova API sync. The configuration they run
on is built and checked by poolmgr.bootstrap (see NOTE(lean) there): each
worker registers the options of the libraries it uses, and imports them,
only after the fork (``_start_worker``).
"""

import os
import random
import socket
import threading

import cotyledon
from cotyledon import oslo_config_glue
from oslo_log import log

from poolmgr import bootstrap
from poolmgr import memory
from poolmgr import startup
from poolmgr import utils

LOG = log.getLogger(__name__)

# ---------------------------------------------------------------------------
# cotyledon services
# ---------------------------------------------------------------------------

def _jitter(worker_id):
    """Seconds a worker waits before starting, so workers do not stampede."""
    # NOTE(jitter): ceilometer and gnocchi sleep worker_id seconds; a random
    # part keeps respawned workers of several daemons apart too.
    return worker_id * random.uniform(0.5, 1.0)


def _broker_errors():
    import amqp.exceptions
    return (amqp.exceptions.AMQPError, ConnectionError)


def _start_worker(conf, libraries):
    """What each worker does first, in its own process (after the fork):
    register the options of the libraries it uses, and keep out what they
    would import but it does not use (poolmgr.memory), and cap its
    malloc arenas (NOTE(arenas)) before it starts a thread."""
    memory.limit_malloc_arenas()
    if bootstrap.DATABASE in libraries:
        memory.defer(memory.PYMYSQL_DEFERRED)
    if bootstrap.MESSAGING in libraries:
        memory.defer(memory.MESSAGING_DEFERRED)
        memory.without_eventlet()
    bootstrap.register_library_opts(conf, libraries)


def _configure_database(conf, **kwargs):
    """Point this worker's poolmgr.db at ``[database] connection``."""
    from poolmgr.db import api as db_api
    memory.share_mysql_tls_context()
    db_api.configure(conf, **kwargs)


_LISTEN_RETRY_MIN, _LISTEN_RETRY_MAX = 2.0, 60.0
_TERMINATE_LOCK_WAIT = 2.0


class IntakeService(cotyledon.Service):
    """Consumes Nova's aggregate notifications into the database."""

    name = "intake"

    def __init__(self, worker_id, conf, intake_bound=None):
        super().__init__(worker_id)
        _start_worker(conf, (bootstrap.DATABASE, bootstrap.MESSAGING))
        self.conf = conf
        self.intake_bound = intake_bound
        self.listener = None
        self.transport = None
        self.endpoint = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def run(self):
        if self._stopping.wait(_jitter(self.worker_id)):
            return
        from poolmgr import intake
        _configure_database(self.conf)
        self.endpoint = intake.build_endpoint(self.conf)
        broker_errors = _broker_errors()
        delay, failing = _LISTEN_RETRY_MIN, False
        while True:
            try:
                if not self._listen():
                    return
                break
            except broker_errors as exc:
                # NOTE(broker): refused credentials or vhost are not retried
                # by oslo.messaging; one line per streak, not a traceback
                # and a respawn every second.
                if not failing:
                    LOG.error("Intake worker %d cannot listen on the message "
                              "bus %s: %s: %s; retrying until it can",
                              self.worker_id,
                              utils.mask_url(self.conf.transport_url or ""),
                              type(exc).__name__, utils.mask_url(str(exc)))
                failing = True
            LOG.debug("Intake worker %d retrying the message bus in %.0f s",
                      self.worker_id, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, _LISTEN_RETRY_MAX)
        if failing:
            LOG.info("Intake worker %d: the message bus accepted it",
                     self.worker_id)
        LOG.info("Intake worker %d listening on exchange %s, topics %s, "
                 "queue %s", self.worker_id, self.conf.notifications.exchange,
                 ",".join(self.conf.notifications.topics),
                 self.conf.notifications.pool)
        if self.intake_bound is not None:
            # NOTE(bound): the listener has started, so the queue is
            # declared and bound to every topic: the first Nova API sync
            # may run (poolmgr.startup). Said after the line above, so the
            # log tells the order too.
            self.intake_bound.report()

    def _listen(self):
        """Start a listener; False when told to stop first."""
        import oslo_messaging
        from poolmgr import intake
        transport = oslo_messaging.get_notification_transport(self.conf)
        listener = intake.build_listener(transport, self.conf,
                                                self.endpoint)
        with self._lock:
            if self._stopping.is_set():
                transport.cleanup()
                return False
            # NOTE(ordering): messages are handled in parallel and out of
            # order on purpose; the database folds them per host and per
            # metadata key by timestamp, so the result does not depend on
            # arrival order.
            try:
                listener.start(override_pool_size=self.conf.notifications
                               .executor_threads)
            except BaseException:
                transport.cleanup()
                raise
            self.transport, self.listener = transport, listener
        return True

    def terminate(self):
        self._stopping.set()
        # NOTE(connecting): a listener start blocked in oslo.messaging's
        # reconnect loop (broker unreachable) holds the lock for as long as
        # the broker is away; nothing has been consumed, so do not wait for
        # it (and for graceful_shutdown_timeout's kill).
        if not self._lock.acquire(timeout=_TERMINATE_LOCK_WAIT):
            LOG.info("Intake worker %d stopped while connecting to the "
                     "message bus", self.worker_id)
            return
        try:
            listener, transport = self.listener, self.transport
        finally:
            self._lock.release()
        if listener is not None:
            # NOTE(drain): stop() stops taking messages; wait() lets the
            # in-flight ones finish (and be acked) before the connection
            # closes, so nothing already stored is redelivered.
            listener.stop()
            listener.wait()
        if self.endpoint is not None:
            self.endpoint.flush_counters()
        if transport is not None:
            transport.cleanup()
        LOG.info("Intake worker %d stopped", self.worker_id)

    def reload(self):
        _reload_in_worker(self.conf)


def _engine_threads(conf):
    """Threads of an engine that use a database connection at once: the
    pass and look threads, the poll loop, and one to spare."""
    return conf.reconciler.threads + conf.reconciler.wait_threads + 2


class ReconcilerService(cotyledon.Service):
    """Runs the pool engine (poolmgr.engine) until told to stop."""

    name = "reconciler"

    def __init__(self, worker_id, conf):
        super().__init__(worker_id)
        _start_worker(conf, (bootstrap.DATABASE,))
        self.conf = conf
        self.reconciler = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._done = threading.Event()

    def run(self):
        try:
            if self._stopping.wait(_jitter(self.worker_id)):
                return
            _configure_database(self.conf,
                                pool_users=_engine_threads(self.conf))
            from poolmgr import engine as pool_engine
            owner = "%s:%d:%d" % (socket.gethostname(), os.getpid(),
                                  self.worker_id)
            with self._lock:
                if self._stopping.is_set():
                    return
                self.reconciler = pool_engine.Engine(self.conf, owner=owner)
            LOG.info("Reconciler worker %d started as %s", self.worker_id,
                     owner)
            self.reconciler.run_forever(self._stopping)
        finally:
            self._done.set()

    def terminate(self):
        with self._lock:
            self._stopping.set()
            engine = self.reconciler
        if engine is not None:
            # NOTE(shutdown): the engine finishes or abandons the step in
            # flight (journaled either way) and releases its leases before
            # run_forever returns; cotyledon's graceful_shutdown_timeout
            # bounds the wait.
            engine.stop()
            self._done.wait()
        LOG.info("Reconciler worker %d stopped", self.worker_id)

    def reload(self):
        _reload_in_worker(self.conf)


class MetricsService(cotyledon.Service):
    """Serves the Prometheus text endpoint ([metrics] prometheus_port)."""

    name = "metrics"

    def __init__(self, worker_id, conf):
        super().__init__(worker_id)
        _start_worker(conf, (bootstrap.DATABASE,))
        self.conf = conf
        self.server = None
        self._lock = threading.Lock()
        self._stopping = False

    def run(self):
        from poolmgr import metrics
        _configure_database(self.conf)
        with self._lock:
            if self._stopping:
                return
            self.server = metrics.start_server(
                self.conf.metrics.prometheus_host,
                self.conf.metrics.prometheus_port)

    def terminate(self):
        with self._lock:
            self._stopping = True
            server = self.server
        if server is not None:
            server.shutdown()
            server.server_close()

    def reload(self):
        _reload_in_worker(self.conf)


def _reload_in_worker(conf):
    # NOTE(sighup): cotyledon's default reload() restarts the worker, which
    # would drop the step in flight; and since cotyledon 2.1 its glue no
    # longer re-reads the config in children (openstack-style.md 1.5). So
    # each worker mutates its own copy: oslo.log then applies `debug` and
    # `log_config_append` without a restart.
    conf.mutate_config_files()
    LOG.info("Configuration reloaded")


class PurgeService(cotyledon.Service):
    """Deletes expired log and journal rows ([database] *_ttl)."""

    name = "purge"
    # Seconds before the first purge, drawn in this range.
    first_delay = (30.0, 90.0)

    def __init__(self, worker_id, conf):
        super().__init__(worker_id)
        _start_worker(conf, (bootstrap.DATABASE,))
        self.conf = conf
        self._stopping = threading.Event()

    def run(self):
        from poolmgr.db import purge
        _configure_database(self.conf)
        # NOTE(first-purge): not at once, so a daemon restarted in a loop
        # does not purge at every start; the ttl options are read at every
        # round, so a SIGHUP that changes them applies at the next one.
        delay = random.uniform(*self.first_delay)
        while not self._stopping.wait(delay):
            try:
                purge.purge_expired(self.conf, stop=self._stopping)
            except Exception as exc:  # noqa: BLE001 - try again next round
                LOG.warning("Purge failed (%s); next try in %ds",
                            type(exc).__name__,
                            self.conf.database.purge_interval)
            delay = self.conf.database.purge_interval

    def terminate(self):
        self._stopping.set()

    def reload(self):
        _reload_in_worker(self.conf)


class NovaSyncService(cotyledon.Service):
    """Desired-state sync from Nova's API and reflection into it."""

    name = "nova-sync"

    def __init__(self, worker_id, conf, intake_bound=None):
        super().__init__(worker_id)
        _start_worker(conf, (bootstrap.DATABASE, bootstrap.NOVA))
        self.conf = conf
        self.intake_bound = intake_bound
        self._stopping = threading.Event()

    def run(self):
        from poolmgr.nova import sync as novasync
        _configure_database(self.conf)
        LOG.info("Nova API sync every %.0fs, reflection %s",
                 self.conf.nova.sync_interval,
                 "on" if self.conf.nova.reflect_metadata else "off")
        try:
            novasync.Loop(self.conf, intake_bound=self.intake_bound).run(
                self._stopping)
        except Exception as exc:  # noqa: BLE001 - [nova] options broken
            LOG.error("Nova API sync stopped: %s", exc)

    def terminate(self):
        self._stopping.set()

    def reload(self):
        _reload_in_worker(self.conf)


def build_service_manager(conf, nova_configured=None):
    """The ServiceManager of the daemon, with every service added.

    ``nova_configured``: check_config's answer, for a lean conf that has no
    ``[nova] auth_type``; None reads it from conf.
    """
    sm = cotyledon.ServiceManager()
    # NOTE(startup-order): made before any worker is forked, so each one
    # shares it; the first Nova API sync waits for it (poolmgr.startup).
    intake_bound = startup.IntakeBound(getattr(sm, "mp_context", None))
    sm.add(IntakeService, workers=conf.notifications.workers,
           args=(conf, intake_bound))
    sm.add(ReconcilerService, workers=conf.reconciler.workers, args=(conf,))
    if conf.metrics.prometheus_port:
        sm.add(MetricsService, workers=1, args=(conf,))
    if conf.database.notification_ttl or conf.database.journal_ttl:
        sm.add(PurgeService, workers=1, args=(conf,))
    if nova_configured is None:
        nova_configured = bool(conf.nova.auth_type)
    if nova_configured:
        sm.add(NovaSyncService, workers=1, args=(conf, intake_bound))
    else:
        LOG.info("Nova API sync: not configured ([nova] auth_type unset); "
                 "desired state from notifications only")
    # NOTE(mutate): "mutate" re-reads the files and runs oslo.log's hook in
    # the master, so workers respawned later inherit the new levels too.
    oslo_config_glue.setup(sm, conf, reload_method="mutate")
    return sm


def set_process_title(title):
    import setproctitle
    setproctitle.setproctitle(title)
