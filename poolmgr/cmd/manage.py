"""poolmgr-manage: the operator's tool.

Categories of commands, as nova-manage and masakari-manage have them::

    poolmgr-manage [--config-file F] db sync|version
    poolmgr-manage [--config-file F] db purge --older-than DAYS [--dry-run]
    poolmgr-manage [--config-file F] host register|list|show|remove|check ...
    poolmgr-manage [--config-file F] pool list|show|plan|sync|retry|history ...
    poolmgr-manage [--config-file F] pool promote AGGREGATE [--host HOST] \
        --confirm-master-fenced
    poolmgr-manage [--config-file F] events list
    poolmgr-manage [--config-file F] host drain HOST [--wait] | undrain HOST
    poolmgr-manage [--config-file F] pool rolling-reboot AGGREGATE [--wait]
    poolmgr-manage [--config-file F] nova sync [--dry-run]
    poolmgr-manage [--config-file F] status

Exit codes: 0 done, 1 failed, 2 usage error. Every failure is one line on
stderr, never a traceback.

The commands live by category: manage_db, manage_host, manage_pool,
manage_nova (nova sync, host import), manage_status (events list, status),
manage_maintenance (host drain|undrain, pool rolling-reboot);
manage_common holds the exit codes, errors and input checks they share.
This module is the parser and main().
"""

import argparse
import os
import sys

from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import strutils
import sqlalchemy.exc

from poolmgr import bootstrap
from poolmgr.cmd import manage_db
from poolmgr.cmd import manage_failover
from poolmgr.cmd import manage_host
from poolmgr.cmd import manage_maintenance
from poolmgr.cmd import manage_nova
from poolmgr.cmd import manage_pool
from poolmgr.cmd import manage_status
from poolmgr.cmd.manage_common import (  # noqa: F401 - re-exported
    EXIT_OK, EXIT_FAILED, EXIT_USAGE, HOST_NAME_MAX, CommandError,
    UsageError, validate_compute_host, validate_xapi_url)
from poolmgr.cmd import pins
from poolmgr.db import api as db_api
from poolmgr.db import migration
from poolmgr import utils

LOG = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, "%s: error: %s\n" % (self.prog, message))


def _format_arg(parser):
    parser.add_argument("--format", choices=("table", "json"),
                        default="table", help="output format")


def build_parser():
    parser = _Parser(prog="poolmgr-manage",
                     description="Operate poolmgr: schema, host inventory, "
                                 "pools, notifications.")
    parser.add_argument("--config-file", action="append", default=[],
                        metavar="FILE", help="poolmgr configuration file "
                        "(repeatable; default: /etc/poolmgr/poolmgr.conf)")
    parser.add_argument("--debug", action="store_true",
                        help="log at DEBUG on stderr")
    categories = parser.add_subparsers(dest="category", metavar="CATEGORY",
                                       parser_class=_Parser)
    categories.required = True

    db = categories.add_parser("db", help="database schema")
    db_cmds = db.add_subparsers(dest="action", metavar="ACTION",
                                parser_class=_Parser)
    db_cmds.required = True
    db_cmds.add_parser("sync", help="create or upgrade the schema"
                       ).set_defaults(func=manage_db.db_sync)
    db_cmds.add_parser("version", help="print the schema revision"
                       ).set_defaults(func=manage_db.db_version)
    p = db_cmds.add_parser("purge", help="delete notification-log and "
                           "journal rows older than DAYS (counters kept)")
    p.add_argument("--older-than", type=_positive_int, required=True,
                   metavar="DAYS", help="age in days of the rows to delete")
    p.add_argument("--dry-run", action="store_true",
                   help="count what would be deleted; delete nothing")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="rows per transaction (default: [database] "
                        "purge_batch_size)")
    _format_arg(p)
    p.set_defaults(func=manage_db.db_purge)

    host = categories.add_parser("host", help="host inventory")
    host_cmds = host.add_subparsers(dest="action", metavar="ACTION",
                                    parser_class=_Parser)
    host_cmds.required = True
    p = host_cmds.add_parser("register",
                             help="map a Nova compute host to its xapi URL")
    p.add_argument("compute_host", metavar="COMPUTE_HOST")
    p.add_argument("xapi_url", metavar="XAPI_URL")
    p.add_argument("--compute-vm", metavar="UUID|auto|none",
                   help="the VM nova-compute runs in on this host (classic "
                        "topology): its uuid, 'auto' (the VM named "
                        "nova-compute-<host> or <host> on it, else its only "
                        "running VM) or 'none' (independent compute); "
                        "omitted: none for a new host, unchanged otherwise")
    pin = p.add_mutually_exclusive_group()
    pin.add_argument("--pin", nargs="?", const=pins.FETCH, metavar="SHA256",
                     help="accept exactly this certificate from now on: "
                          "without a value, the one the host presents now "
                          "(shown: fingerprint, subject, expiry); with one, "
                          "a SHA-256 fingerprint got out of band (colons "
                          "and case do not matter)")
    pin.add_argument("--repin", action="store_true",
                     help="pin the certificate the host presents now, "
                          "replacing the old pin (after a planned "
                          "certificate change)")
    p.set_defaults(func=manage_host.host_register)
    p = host_cmds.add_parser("list", help="list registered hosts")
    _format_arg(p)
    p.set_defaults(func=manage_host.host_list)
    p = host_cmds.add_parser("show", help="show one registered host")
    p.add_argument("compute_host", metavar="COMPUTE_HOST")
    _format_arg(p)
    p.set_defaults(func=manage_host.host_show)
    p = host_cmds.add_parser("remove", help="forget a registered host")
    p.add_argument("compute_host", metavar="COMPUTE_HOST")
    p.add_argument("--force", action="store_true",
                   help="remove even if it is a pool member")
    p.set_defaults(func=manage_host.host_remove)
    p = host_cmds.add_parser("check", help="reach the host's xapi: "
                             "credentials, TLS, version, pool, running VMs")
    p.add_argument("compute_host", metavar="COMPUTE_HOST")
    _format_arg(p)
    p.set_defaults(func=manage_host.host_check)
    p = host_cmds.add_parser("import", help="register every nova-compute "
                             "service Nova lists that is not registered")
    p.add_argument("--url-template", required=True, metavar="TEMPLATE",
                   help="xapi URL of a host, {host} standing for its "
                        "compute host name")
    _format_arg(p)
    p.set_defaults(func=manage_nova.host_import)
    p = host_cmds.add_parser("drain", help="maintenance: disable the host, "
                             "check what blocks its evacuation, evacuate "
                             "it (the daemon does it)")
    p.add_argument("host", metavar="HOST")
    p.add_argument("--wait", action="store_true",
                   help="follow it; exit 0 when drained, 1 when it failed")
    p.set_defaults(func=manage_maintenance.host_drain, format="table")
    p = host_cmds.add_parser("undrain", help="end maintenance: enable the "
                             "host, member active again")
    p.add_argument("host", metavar="HOST")
    p.set_defaults(func=manage_maintenance.host_undrain, format="table")

    pool = categories.add_parser("pool", help="pools (flagged aggregates)")
    pool_cmds = pool.add_subparsers(dest="action", metavar="ACTION",
                                    parser_class=_Parser)
    pool_cmds.required = True
    p = pool_cmds.add_parser("list", help="every pool at a glance")
    _format_arg(p)
    p.set_defaults(func=manage_pool.pool_list)
    for name, func, text in (
            ("show", manage_pool.pool_show,
             "one pool: members, SRs, readiness"),
            ("plan", manage_pool.pool_plan,
             "dry run: the xapi calls the engine would make and every "
             "failing check"),
            ("history", manage_pool.pool_history,
             "the journal, newest first")):
        p = pool_cmds.add_parser(name, help=text)
        p.add_argument("aggregate", metavar="AGGREGATE",
                       help="aggregate id, uuid or name")
        _format_arg(p)
        if name == "history":
            p.add_argument("--limit", type=_positive_int, default=50)
        p.set_defaults(func=func)
    p = pool_cmds.add_parser("sync", help="reconcile now")
    p.add_argument("aggregate", metavar="AGGREGATE")
    p.add_argument("--wait", action="store_true",
                   help="run the pass here, print each step, exit 0 when "
                        "converged and 1 when not")
    p.set_defaults(func=manage_pool.pool_sync, format="table")
    p = pool_cmds.add_parser("prove", help="prove live migration now: a "
                             "canary VM migrated to every member; exit 0 "
                             "proven, 1 not")
    p.add_argument("aggregate", metavar="AGGREGATE")
    _format_arg(p)
    p.set_defaults(func=manage_pool.pool_prove)
    p = pool_cmds.add_parser("retry", help="clear errors so the engine "
                             "tries again")
    p.add_argument("aggregate", metavar="AGGREGATE")
    p.add_argument("host", metavar="HOST", nargs="?",
                   help="only this member (default: all in error)")
    p.set_defaults(func=manage_pool.pool_retry, format="table")
    p = pool_cmds.add_parser("promote", help="make a member master of a "
                             "master_lost pool (its master powered off)")
    p.add_argument("aggregate", metavar="AGGREGATE")
    p.add_argument("--host", metavar="HOST",
                   help="the new master (default: the aggregate's first "
                        "host that answers)")
    p.add_argument("--confirm-master-fenced", action="store_true",
                   help="required: you have made sure the lost master is "
                        "powered off")
    p.set_defaults(func=manage_failover.pool_promote, format="table")
    p = pool_cmds.add_parser("rolling-reboot", help="drain, reboot and "
                             "undrain each host, master first (the daemon "
                             "does it)")
    p.add_argument("aggregate", metavar="AGGREGATE")
    p.add_argument("--wait", action="store_true",
                   help="follow it; exit 0 when every host is back, 1 when "
                        "it stopped")
    p.set_defaults(func=manage_maintenance.pool_rolling_reboot,
                   format="table")

    ev = categories.add_parser("events", help="notifications received")
    ev_cmds = ev.add_subparsers(dest="action", metavar="ACTION",
                                parser_class=_Parser)
    ev_cmds.required = True
    p = ev_cmds.add_parser("list", help="recent notifications and outcome")
    p.add_argument("--limit", type=_positive_int, default=50)
    p.add_argument("--outcome", choices=(db_api.APPLIED, db_api.DUPLICATE,
                                         db_api.STALE, db_api.RECORDED,
                                         db_api.IGNORED, db_api.REJECTED))
    _format_arg(p)
    p.set_defaults(func=manage_status.events_list)

    nv = categories.add_parser("nova", help="Nova's API")
    nv_cmds = nv.add_subparsers(dest="action", metavar="ACTION",
                                parser_class=_Parser)
    nv_cmds.required = True
    p = nv_cmds.add_parser("sync", help="run the desired-state sync now "
                           "and print what changed")
    p.add_argument("--dry-run", action="store_true",
                   help="only print what would change")
    _format_arg(p)
    p.set_defaults(func=manage_nova.nova_sync)

    p = categories.add_parser("status", help="the daemon's view: last "
                              "event, pools by state, errors")
    _format_arg(p)
    p.set_defaults(func=manage_status.status)
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _database_target(conf):
    return utils.mask_url(conf.database.connection or "")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    conf_argv = []
    for path in args.config_file:
        conf_argv += ["--config-file", path]
    try:
        conf = bootstrap.prepare_service(conf_argv, setup_logging=False)
    except Exception as exc:  # noqa: BLE001 - oslo.config raises many types
        print("poolmgr-manage: configuration error: %s" %
              strutils.mask_password(str(exc)), file=sys.stderr)
        return EXIT_USAGE
    # NOTE(quiet): an operator's command prints its own results; engine
    # INFO lines would interleave with them on stderr.
    logging.set_defaults(default_log_levels=bootstrap._DEFAULT_LOG_LEVELS + (
        [] if args.debug else ["poolmgr=WARN"]))
    conf.set_override("debug", args.debug)
    conf.set_override("use_stderr", True)
    logging.setup(conf, "poolmgr-manage")
    if not conf.database.connection:
        print("poolmgr-manage: [database] connection is not set (pass "
              "--config-file)", file=sys.stderr)
        return EXIT_USAGE
    try:
        # NOTE(fail-fast): an operator wants one clear line now, not oslo.db's
        # ten startup retries.
        db_api.configure(conf, max_retries=0)
        result = args.func(conf, args)
    except UsageError as exc:
        print("poolmgr-manage: %s" % exc, file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print("poolmgr-manage: %s" % exc, file=sys.stderr)
        return EXIT_FAILED
    except (db_exc.DBConnectionError, sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.ProgrammingError, db_exc.DBError) as exc:
        problem = (migration.schema_problem()
                   if args.category != "db" else None)
        if problem:
            print("poolmgr-manage: database %s: %s" % (
                _database_target(conf), problem), file=sys.stderr)
            return EXIT_FAILED
        reason = getattr(exc, "inner_exception", None) or exc
        print("poolmgr-manage: database %s: %s" % (
            _database_target(conf),
            utils.mask_url(str(reason).splitlines()[0])),
            file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:
        # NOTE(pipe): the reader went away (`... | head`); nothing to say,
        # and stdout must not be flushed into the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - never a traceback for operators
        LOG.debug("command failed", exc_info=True)
        print("poolmgr-manage: %s: %s" % (
            type(exc).__name__, strutils.mask_password(str(exc))),
            file=sys.stderr)
        return EXIT_FAILED
    return result or EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
