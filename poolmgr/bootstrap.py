"""Bootstrap shared by every poolmgr command: the conf and its checks.

``build_conf`` registers the options, ``prepare_service`` parses the
command line and the files and sets up logging, ``check_config`` checks a
lean conf's every value in a child; poolmgr.service builds the daemon's
cotyledon services on top of these.

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
import sys
import traceback

from oslo_config import cfg
from oslo_log import log

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
