"""Bootstrap shared by every poolmgr command, and the cotyledon services.

NOTE(lean): the daemon's master imports only what it needs to parse the
configuration and run cotyledon (oslo.config, oslo.log, cotyledon and
poolmgr's own option definitions). What a worker forks from it is shared
copy-on-write; anything more it would map into every worker, used or not.
So the libraries (oslo.messaging with oslo.service and eventlet, oslo.db
and SQLAlchemy, keystoneauth1 with requests) are imported in the workers
that use them, after the fork, and their options registered there
(``register_library_opts``); the master checks every value, theirs
included, in a short-lived child at start (``check_config``).
"""

import json
import logging as std_logging
import os
import random
import socket
import sys
import threading
import traceback

import cotyledon
from cotyledon import oslo_config_glue
from oslo_config import cfg
from oslo_log import log

from poolmgr import memory
from poolmgr import opts
from poolmgr import utils

LOG = log.getLogger(__name__)

_DEFAULT_LOG_LEVELS = [
    "amqp=WARN", "amqplib=WARN", "kombu=WARN", "oslo.messaging=INFO",
    "oslo_messaging=INFO", "sqlalchemy=WARN", "alembic=WARN",
    "urllib3=WARN", "stevedore=WARN", "oslo_db=INFO",
    # NOTE(backend): oslo.messaging imports oslo.service, which logs its
    # eventlet backend at INFO; imported after log.setup now (in the workers
    # and check_config's child), it would print two lines at every start.
    "oslo_service=WARN",
]

# The libraries whose options register_library_opts adds.
DATABASE, MESSAGING, NOVA = "database", "messaging", "nova"
LIBRARIES = (DATABASE, MESSAGING, NOVA)


def build_conf(libraries=True):
    """A fresh ConfigOpts with every poolmgr option registered.

    ``libraries=False``: poolmgr's own options and oslo.log's only, none
    that needs oslo.db, oslo.messaging or keystoneauth1 imported (the
    daemon's master); ``register_library_opts`` adds those later.
    """
    conf = cfg.ConfigOpts()
    opts.register_opts(conf, libraries=False)
    log.register_options(conf)
    if libraries:
        register_library_opts(conf)
    return conf


def register_library_opts(conf, libraries=LIBRARIES):
    """Register the options of ``libraries`` (all three by default) on conf.

    Safe on a conf already parsed (values are read from the files when
    asked for) and when they are registered already.
    """
    if DATABASE in libraries:
        from oslo_db import options as db_options
        db_options.set_defaults(conf)
    if MESSAGING in libraries:
        # NOTE(greendns): oslo.messaging imports oslo.service and so
        # eventlet, whose green DNS resolver imports dnspython and
        # cryptography (16 MB per process that loads oslo.messaging).
        # poolmgr never monkey-patches, so that resolver is never used;
        # eventlet reads this once, when it is first imported.
        os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
        from oslo_messaging import opts as messaging_opts
        for group, group_opts in messaging_opts.list_opts():
            conf.register_opts(group_opts,
                               group=None if group == "DEFAULT" else group)
        # NOTE(exchange): Nova publishes on its control_exchange, "nova".
        conf.set_default("control_exchange", "nova")
        # NOTE(prefetch): without a bound the rabbit driver pulls the whole
        # queue into memory and a crash leaves all of it unacked at once;
        # twice the intake's batch size keeps a batch arriving while one is
        # stored.
        conf.set_default("rabbit_qos_prefetch_count", 400,
                         group="oslo_messaging_rabbit")
    if NOVA in libraries:
        from poolmgr.conf import nova as nova_conf
        nova_conf.register_keystoneauth(conf)


def prepare_service(argv=None, config_files=None, conf=None,
                    setup_logging=True, log_values=True):
    """Parse the command line and config files, set up logging, return conf.

    With logging set up and ``log_values``, every option's value is logged
    at DEBUG, which reads (and so checks) each of them: a bad value raises
    cfg.Error here.
    """
    if conf is None:
        conf = build_conf()
    log.set_defaults(default_log_levels=_DEFAULT_LOG_LEVELS)
    conf(argv if argv is not None else [], project="poolmgr",
         validate_default_values=True, default_config_files=config_files)
    if setup_logging:
        log.setup(conf, "poolmgr")
        if log_values:
            conf.log_opt_values(LOG, std_logging.DEBUG)
    return conf


def check_config(conf):
    """Check every option of a parsed lean conf, the libraries' included.

    NOTE(check): the master registers only poolmgr's and oslo.log's
    options (build_conf(libraries=False)), so a bad value of a library's
    option (``[oslo_messaging_rabbit]``, ``[database]``, ``[nova]``) would
    only show in a worker, respawned in a loop. A forked child registers
    them all, logs every value at DEBUG (which reads, so checks, each one:
    the same log the daemon always wrote at start) and exits; what it
    imported goes with it. Returns what the master needs to know of those
    options: ``{"nova_configured": bool}``. Raises cfg.Error, with the
    library's message masked, for a bad value.
    """
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its verdict is the pipe
        os.close(read_fd)
        try:
            try:
                register_library_opts(conf)
                conf.log_opt_values(LOG, std_logging.DEBUG)
                reply = {"nova_configured": bool(conf.nova.auth_type)}
            except cfg.Error as exc:
                reply = {"error": utils.mask_url(str(exc))}
            except BaseException as exc:  # noqa: BLE001 - told to the master
                traceback.print_exc()
                reply = {"crash": type(exc).__name__}
            for handler in std_logging.getLogger().handlers:
                handler.flush()
            sys.stderr.flush()
            os.write(write_fd, json.dumps(reply).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as reader:
        for chunk in iter(lambda: reader.read(65536), b""):
            chunks.append(chunk)
    os.waitpid(pid, 0)
    try:
        reply = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        reply = {}
    if "error" in reply:
        raise cfg.Error(reply["error"])
    if "nova_configured" not in reply:
        raise RuntimeError("the configuration check (child process %d) "
                           "failed: %s" % (pid, reply.get("crash", "died")))
    return reply


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
    if DATABASE in libraries:
        memory.defer(memory.PYMYSQL_DEFERRED)
    if MESSAGING in libraries:
        memory.defer(memory.MESSAGING_DEFERRED)
        memory.without_eventlet()
    register_library_opts(conf, libraries)


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

    def __init__(self, worker_id, conf):
        super().__init__(worker_id)
        _start_worker(conf, (DATABASE, MESSAGING))
        self.conf = conf
        self.listener = None
        self.transport = None
        self.endpoint = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def run(self):
        if self._stopping.wait(_jitter(self.worker_id)):
            return
        from poolmgr import notifications
        _configure_database(self.conf)
        self.endpoint = notifications.build_endpoint(self.conf)
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

    def _listen(self):
        """Start a listener; False when told to stop first."""
        import oslo_messaging
        from poolmgr import notifications
        transport = oslo_messaging.get_notification_transport(self.conf)
        listener = notifications.build_listener(transport, self.conf,
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
        _start_worker(conf, (DATABASE,))
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
        _start_worker(conf, (DATABASE,))
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
        _start_worker(conf, (DATABASE,))
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

    def __init__(self, worker_id, conf):
        super().__init__(worker_id)
        _start_worker(conf, (DATABASE, NOVA))
        self.conf = conf
        self._stopping = threading.Event()

    def run(self):
        from poolmgr import novasync
        _configure_database(self.conf)
        LOG.info("Nova API sync every %.0fs, reflection %s",
                 self.conf.nova.sync_interval,
                 "on" if self.conf.nova.reflect_metadata else "off")
        try:
            novasync.Loop(self.conf).run(self._stopping)
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
    sm.add(IntakeService, workers=conf.notifications.workers, args=(conf,))
    sm.add(ReconcilerService, workers=conf.reconciler.workers, args=(conf,))
    if conf.metrics.prometheus_port:
        sm.add(MetricsService, workers=1, args=(conf,))
    if conf.database.notification_ttl or conf.database.journal_ttl:
        sm.add(PurgeService, workers=1, args=(conf,))
    if nova_configured is None:
        nova_configured = bool(conf.nova.auth_type)
    if nova_configured:
        sm.add(NovaSyncService, workers=1, args=(conf,))
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
