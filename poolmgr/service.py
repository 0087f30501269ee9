"""Bootstrap shared by every poolmgr command, and the cotyledon services."""

import logging as std_logging

from oslo_config import cfg
from oslo_db import options as db_options
from oslo_log import log
from oslo_messaging import opts as messaging_opts

from poolmgr import opts

LOG = log.getLogger(__name__)

_DEFAULT_LOG_LEVELS = [
    "amqp=WARN", "amqplib=WARN", "kombu=WARN", "oslo.messaging=INFO",
    "oslo_messaging=INFO", "sqlalchemy=WARN", "alembic=WARN",
    "urllib3=WARN", "stevedore=WARN", "oslo_db=INFO",
]


def build_conf():
    """A fresh ConfigOpts with every poolmgr option registered."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    db_options.set_defaults(conf)
    log.register_options(conf)
    for group, group_opts in messaging_opts.list_opts():
        conf.register_opts(group_opts,
                           group=None if group == "DEFAULT" else group)
    # NOTE(exchange): Nova publishes on its control_exchange, "nova".
    conf.set_default("control_exchange", "nova")
    # NOTE(prefetch): without a bound the rabbit driver pulls the whole queue
    # into memory; a crash would then leave all of it unacked at once.
    conf.set_default("rabbit_qos_prefetch_count", 100,
                     group="oslo_messaging_rabbit")
    return conf


def prepare_service(argv=None, config_files=None, conf=None, setup_logging=True):
    """Parse the command line and config files, set up logging, return conf."""
    if conf is None:
        conf = build_conf()
    log.set_defaults(default_log_levels=_DEFAULT_LOG_LEVELS)
    conf(argv if argv is not None else [], project="poolmgr",
         validate_default_values=True, default_config_files=config_files)
    if setup_logging:
        log.setup(conf, "poolmgr")
        conf.log_opt_values(LOG, std_logging.DEBUG)
    return conf
