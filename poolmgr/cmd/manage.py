"""poolmgr-manage: the operator's tool.

Categories of commands, as nova-manage and masakari-manage have them::

    poolmgr-manage [--config-file F] db sync|version
    poolmgr-manage [--config-file F] db purge --older-than DAYS [--dry-run]
    poolmgr-manage [--config-file F] host register|list|show|remove|check ...
    poolmgr-manage [--config-file F] pool list|show|plan|sync|retry|history ...
    poolmgr-manage [--config-file F] events list
    poolmgr-manage [--config-file F] nova sync [--dry-run]
    poolmgr-manage [--config-file F] status

Exit codes: 0 done, 1 failed, 2 usage error. Every failure is one line on
stderr, never a traceback.
"""

import argparse
import json
import sys
import urllib.parse

from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import strutils
from oslo_utils import uuidutils
import sqlalchemy.exc

from poolmgr.cmd import pins
from poolmgr.cmd import views
from poolmgr.db import api as db_api
from poolmgr.db import compute_vms
from poolmgr.db import migration
from poolmgr import service
from poolmgr import utils

LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# hosts.compute_host, like Nova's compute_nodes.host, is a String(255).
HOST_NAME_MAX = 255


class CommandError(Exception):
    """A failure to report to the operator in one line (exit 1)."""


class UsageError(Exception):
    """Bad input from the operator (exit 2)."""


def _emit(args, data, table):
    if args.format == "json":
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(table())


def validate_compute_host(name):
    if not name.strip():
        raise UsageError("COMPUTE_HOST must not be empty")
    if len(name) > HOST_NAME_MAX:
        raise UsageError("COMPUTE_HOST is %d characters long; Nova's host "
                         "names are at most %d" % (len(name), HOST_NAME_MAX))
    return name


def validate_xapi_url(url):
    try:
        parsed = urllib.parse.urlparse(url)
        port = parsed.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            port = -1
        else:
            raise UsageError("XAPI_URL %s cannot be parsed: %s" % (
                utils.mask_url(url), exc))
    if port is not None and not 1 <= port <= 65535:
        raise UsageError("XAPI_URL port must be a number from 1 to 65535: "
                         "%s" % utils.mask_url(url))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError("XAPI_URL must be an http:// or https:// URL with a "
                         "host, got %r" % strutils.mask_password(url))
    if parsed.username or parsed.password:
        raise UsageError("XAPI_URL must not carry credentials; set "
                         "[xenserver] connection_username/password instead")
    return url


# ---------------------------------------------------------------------------
# db
# ---------------------------------------------------------------------------

def db_sync(conf, args):
    migration.upgrade()
    print("database is at revision %s" % migration.version())


def db_version(conf, args):
    print(migration.version() or "None (no schema: run 'db sync')")


def db_purge(conf, args):
    from poolmgr.db import purge
    report = purge.purge(notification_days=args.older_than,
                         journal_days=args.older_than,
                         batch_size=(args.batch_size
                                     or conf.database.purge_batch_size),
                         dry_run=args.dry_run)
    _emit(args, report, lambda: _purge_text(report))


def _purge_text(report):
    verb = "would delete" if report["dry_run"] else "deleted"
    key = "would_delete" if report["dry_run"] else "deleted"
    notes, ops = report["notifications"], report["operations"]
    return "\n".join([
        "notifications: %s %d rows received before %s (%d batches of at "
        "most %d)" % (verb, notes[key], notes["older_than"],
                      notes["batches"], report["batch_size"]),
        "journal: %s %d finished rows older than %s (%d batches); kept %d "
        "open and %d newest-per-pool rows" % (
            verb, ops[key], ops["older_than"], ops["batches"],
            ops["kept_open"], ops["kept_newest_per_pool"])])


# ---------------------------------------------------------------------------
# host
# ---------------------------------------------------------------------------

def host_register(conf, args):
    validate_compute_host(args.compute_host)
    url = validate_xapi_url(args.xapi_url)
    pin = _pin_choice(conf, args, url)
    compute_vm = _compute_vm_choice(conf, args, url)
    created = db_api.register_host(args.compute_host, url)
    if compute_vm is not _KEEP_COMPUTE_VM:
        compute_vms.set_compute_vm(args.compute_host, compute_vm)
    print("%s %s -> %s" % ("registered" if created else "updated",
                           args.compute_host, url))
    if compute_vm not in (None, _KEEP_COMPUTE_VM):
        print("compute VM of %s: %s" % (args.compute_host, compute_vm))
    elif compute_vm is None:
        print("%s has no compute VM (independent compute)"
              % args.compute_host)
    pins.store(args, pin, url)


def _pin_choice(conf, args, url):
    try:
        return pins.choose(conf, args, url)
    except pins.PinError as exc:
        raise (UsageError if exc.usage else CommandError)(str(exc))


_KEEP_COMPUTE_VM = object()


def _compute_vm_choice(conf, args, url):
    """--compute-vm: a uuid, ``auto`` (asks xapi), ``none``; when omitted a
    new host has none and a known one keeps what was recorded."""
    value = args.compute_vm
    if value is None:
        try:
            db_api.get_host(args.compute_host)
            return _KEEP_COMPUTE_VM
        except db_api.NotFound:
            return None
    if value.lower() == "none":
        return None
    if value.lower() != "auto":
        if not uuidutils.is_uuid_like(value):
            raise UsageError("--compute-vm must be a VM uuid, 'auto' or "
                             "'none', got %r" % value)
        return value.lower()
    from poolmgr.xenapi import compute_vm as xcompute_vm
    from poolmgr.xenapi import errors as xerrors
    try:
        return xcompute_vm.discover(conf, url, args.compute_host)
    except xcompute_vm.NoSingleCandidate as exc:
        raise CommandError("--compute-vm auto: %s; candidates: %s; pass "
                           "--compute-vm UUID (or none)" % (
                               exc, "; ".join(exc.candidates) or "none"))
    except xerrors.XapiError as exc:
        raise CommandError("--compute-vm auto: cannot read VMs from %s: %s"
                           % (utils.mask_url(url), exc))


def host_list(conf, args):
    hosts = [views.host_view(h) for h in db_api.list_hosts()]
    _emit(args, hosts, lambda: views.host_table(hosts))


def host_show(conf, args):
    host = views.host_view(_get_host(args.compute_host))
    _emit(args, host, lambda: views.record_table(host))


def host_remove(conf, args):
    _get_host(args.compute_host)
    in_use = [m for m in db_api.list_all_members()
              if m["host"] == args.compute_host
              and m["state"] not in (db_api.MEMBER_REMOVED,)]
    if in_use and not args.force:
        raise CommandError(
            "host %s is a member of aggregate(s) %s; remove it from the "
            "aggregate first or pass --force" % (
                args.compute_host,
                ", ".join(str(m["aggregate_id"]) for m in in_use)))
    db_api.remove_host(args.compute_host)
    print("removed %s" % args.compute_host)


def host_check(conf, args):
    from poolmgr.xenapi import inspect as xinspect
    host = _get_host(args.compute_host)
    report = xinspect.check_host(conf, host["xapi_url"])
    report.update(pins.check_report(conf, host, report))
    if host.get("compute_vm_uuid") and report.get("credentials_ok"):
        from poolmgr.xenapi import compute_vm as xcompute_vm
        report.update(xcompute_vm.check(conf, host["xapi_url"],
                                        args.compute_host,
                                        host["compute_vm_uuid"]))
        if not report["compute_vm_ok"]:
            report["ok"] = False
    else:
        report["compute_vm_uuid"] = host.get("compute_vm_uuid")
    _emit(args, report, lambda: views.record_table(report))
    if not report.get("ok"):
        return EXIT_FAILED


def _get_host(name):
    try:
        return db_api.get_host(name)
    except db_api.NotFound as exc:
        raise CommandError(str(exc))


# ---------------------------------------------------------------------------
# pool
# ---------------------------------------------------------------------------

def _find_aggregate(ref):
    try:
        return db_api.find_aggregate(ref)
    except db_api.NotFound as exc:
        raise CommandError(str(exc))


def pool_list(conf, args):
    pools = views.all_pool_views()
    _emit(args, pools, lambda: views.pool_list_table(pools))


def pool_show(conf, args):
    agg = _find_aggregate(args.aggregate)
    pool = views.pool_view(agg)
    _emit(args, pool, lambda: views.pool_show_text(pool))


def pool_history(conf, args):
    agg = _find_aggregate(args.aggregate)
    ops = [views.operation_view(o) for o in
           db_api.list_operations(agg["id"], limit=args.limit)]
    _emit(args, ops, lambda: views.history_table(ops))


def pool_retry(conf, args):
    agg = _find_aggregate(args.aggregate)
    if args.host is not None:
        # A host that left the aggregate but is still a member (an eject
        # refused) can be retried too.
        known = set(agg["hosts"]) | {
            m["host"] for m in db_api.list_members(agg["id"])
            if m["state"] != db_api.MEMBER_REMOVED}
        if args.host not in known:
            raise CommandError(
                "host %s is not in aggregate %s (%s); its hosts: %s" % (
                    args.host, agg["id"], agg["name"],
                    ", ".join(sorted(known)) or "none"))
    try:
        cleared = db_api.retry_pool(agg["id"], args.host)
    except db_api.NotFound as exc:
        raise CommandError(str(exc))
    print("aggregate %s: %d member error(s) cleared; the engine will try "
          "again" % (agg["id"], cleared))


def pool_plan(conf, args):
    from poolmgr import engine as pool_engine
    agg = _find_aggregate(args.aggregate)
    plan = pool_engine.Engine(conf).plan_pool(agg["id"])
    data = views.plan_view(plan)
    _emit(args, data, lambda: views.plan_text(data))
    return EXIT_FAILED if data.get("failures") else EXIT_OK


def pool_sync(conf, args):
    from poolmgr import engine as pool_engine
    agg = _find_aggregate(args.aggregate)
    engine = pool_engine.Engine(conf)
    db_api.mark_due(agg["id"])
    if not args.wait:
        print("aggregate %s marked for reconciliation" % agg["id"])
        return EXIT_OK
    journal = {}

    def progress(op):
        # The engine reports a step when it starts and when it ends; the
        # second report may carry only what changed.
        merged = dict(journal.get(op["id"], {}))
        merged.update({k: v for k, v in op.items() if v is not None})
        journal[op["id"]] = merged
        print(views.progress_line(merged), flush=True)

    result = engine.reconcile_pool(agg["id"], progress=progress)
    pool = views.pool_view(db_api.find_aggregate(agg["id"]))
    print(views.pool_show_text(pool))
    # A member parked in error is not converged, whatever the pass says.
    failed = [m for m in pool["members"] if m["state"] == db_api.MEMBER_ERROR]
    if failed or not result.converged:
        print("aggregate %s did not converge%s" % (agg["id"], "".join(
            "; %s: %s" % (m["host"], m["error_code"]) for m in failed)),
            file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------------------
# events, status
# ---------------------------------------------------------------------------

def events_list(conf, args):
    rows = [views.notification_view(n) for n in
            db_api.list_notifications(limit=args.limit, outcome=args.outcome)]
    _emit(args, rows, lambda: views.events_table(rows))


def status(conf, args):
    from poolmgr import novasync
    data = views.status_view()
    data["nova_sync"] = novasync.status_view(conf)
    _emit(args, data, lambda: views.status_text(data) + "\n"
          + novasync.status_line(data["nova_sync"]))


# ---------------------------------------------------------------------------
# nova (desired-state sync), host import
# ---------------------------------------------------------------------------

def _nova_client(conf):
    from poolmgr import nova
    if not nova.configured(conf):
        raise CommandError("[nova] is not configured: set auth_type and its "
                           "options (see README, Nova API)")
    try:
        return nova.NovaClient(conf)
    except nova.NovaError as exc:
        raise CommandError(str(exc))


def _change_line(change):
    parts = ["aggregate %s (%s): %s" % (change["aggregate_id"],
                                        change.get("name"),
                                        change["action"])]
    for key, label in (("hosts_added", "hosts added"),
                       ("hosts_removed", "hosts removed"),
                       ("host_order", "host order")):
        if change.get(key):
            parts.append("%s %s" % (label, ", ".join(change[key])))
    if change.get("metadata_set"):
        parts.append("metadata set %s" % ", ".join(
            "%s=%s" % kv for kv in sorted(change["metadata_set"].items())))
    if change.get("metadata_removed"):
        parts.append("metadata removed %s" % ", ".join(
            change["metadata_removed"]))
    if change.get("renamed_from") is not None:
        parts.append("renamed from %s" % change["renamed_from"])
    return "; ".join(parts)


def nova_sync(conf, args):
    from poolmgr import nova
    from poolmgr import novasync
    client = _nova_client(conf)
    try:
        listing, changes = novasync.sync_once(client, dry_run=args.dry_run)
    except nova.NovaError as exc:
        raise CommandError(str(exc))
    data = {"dry_run": args.dry_run,
            "listed_at": novasync._iso(listing.started_at),
            "aggregates": len(listing.aggregates), "changes": changes}

    def text():
        lines = ["%d aggregate(s) listed by Nova, %d %s" % (
            len(listing.aggregates), len(changes),
            "would change (dry run)" if args.dry_run else "changed")]
        lines += ["  " + _change_line(c) for c in changes]
        return "\n".join(lines)

    _emit(args, data, text)


def host_import(conf, args):
    from poolmgr import nova
    template = args.url_template
    if "{host}" not in template:
        raise UsageError("--url-template must contain {host} (the compute "
                         "host name), e.g. https://{host}.xen.example.org")
    validate_xapi_url(template.replace("{host}", "host"))
    client = _nova_client(conf)
    try:
        names = client.compute_hosts()
    except nova.NovaError as exc:
        raise CommandError(str(exc))
    known = db_api.get_hosts(names)
    registered, skipped = [], []
    for name in names:
        if name in known:
            skipped.append({"host": name, "reason": "already registered",
                            "xapi_url": known[name]["xapi_url"]})
            continue
        url = template.replace("{host}", name)
        try:
            validate_compute_host(name)
            validate_xapi_url(url)
        except UsageError as exc:
            skipped.append({"host": name, "reason": str(exc)})
            continue
        if db_api.register_host(name, url):
            registered.append({"host": name, "xapi_url": url})
        else:
            skipped.append({"host": name, "reason": "already registered",
                            "xapi_url": url})
    data = {"registered": registered, "skipped": skipped}

    def text():
        lines = ["registered %s -> %s" % (r["host"], r["xapi_url"])
                 for r in registered]
        lines += ["skipped %s: %s" % (k["host"], k["reason"])
                  for k in skipped]
        lines.append("%d registered, %d skipped (of %d nova-compute "
                     "services)" % (len(registered), len(skipped),
                                    len(names)))
        return "\n".join(lines)

    _emit(args, data, text)


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
                       ).set_defaults(func=db_sync)
    db_cmds.add_parser("version", help="print the schema revision"
                       ).set_defaults(func=db_version)
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
    p.set_defaults(func=db_purge)

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
    p.set_defaults(func=host_register)
    p = host_cmds.add_parser("list", help="list registered hosts")
    _format_arg(p)
    p.set_defaults(func=host_list)
    p = host_cmds.add_parser("show", help="show one registered host")
    p.add_argument("compute_host", metavar="COMPUTE_HOST")
    _format_arg(p)
    p.set_defaults(func=host_show)
    p = host_cmds.add_parser("remove", help="forget a registered host")
    p.add_argument("compute_host", metavar="COMPUTE_HOST")
    p.add_argument("--force", action="store_true",
                   help="remove even if it is a pool member")
    p.set_defaults(func=host_remove)
    p = host_cmds.add_parser("check", help="reach the host's xapi: "
                             "credentials, TLS, version, pool, running VMs")
    p.add_argument("compute_host", metavar="COMPUTE_HOST")
    _format_arg(p)
    p.set_defaults(func=host_check)
    p = host_cmds.add_parser("import", help="register every nova-compute "
                             "service Nova lists that is not registered")
    p.add_argument("--url-template", required=True, metavar="TEMPLATE",
                   help="xapi URL of a host, {host} standing for its "
                        "compute host name")
    _format_arg(p)
    p.set_defaults(func=host_import)

    pool = categories.add_parser("pool", help="pools (flagged aggregates)")
    pool_cmds = pool.add_subparsers(dest="action", metavar="ACTION",
                                    parser_class=_Parser)
    pool_cmds.required = True
    p = pool_cmds.add_parser("list", help="every pool at a glance")
    _format_arg(p)
    p.set_defaults(func=pool_list)
    for name, func, text in (
            ("show", pool_show, "one pool: members, SRs, readiness"),
            ("plan", pool_plan, "dry run: the xapi calls the engine would "
                                "make and every failing check"),
            ("history", pool_history, "the journal, newest first")):
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
    p.set_defaults(func=pool_sync, format="table")
    p = pool_cmds.add_parser("retry", help="clear errors so the engine "
                             "tries again")
    p.add_argument("aggregate", metavar="AGGREGATE")
    p.add_argument("host", metavar="HOST", nargs="?",
                   help="only this member (default: all in error)")
    p.set_defaults(func=pool_retry, format="table")

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
    p.set_defaults(func=events_list)

    nv = categories.add_parser("nova", help="Nova's API")
    nv_cmds = nv.add_subparsers(dest="action", metavar="ACTION",
                                parser_class=_Parser)
    nv_cmds.required = True
    p = nv_cmds.add_parser("sync", help="run the desired-state sync now "
                           "and print what changed")
    p.add_argument("--dry-run", action="store_true",
                   help="only print what would change")
    _format_arg(p)
    p.set_defaults(func=nova_sync)

    p = categories.add_parser("status", help="the daemon's view: last "
                              "event, pools by state, errors")
    _format_arg(p)
    p.set_defaults(func=status)
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
        conf = service.prepare_service(conf_argv, setup_logging=False)
    except Exception as exc:  # noqa: BLE001 - oslo.config raises many types
        print("poolmgr-manage: configuration error: %s" %
              strutils.mask_password(str(exc)), file=sys.stderr)
        return EXIT_USAGE
    # NOTE(quiet): an operator's command prints its own results; engine
    # INFO lines would interleave with them on stderr.
    logging.set_defaults(default_log_levels=service._DEFAULT_LOG_LEVELS + (
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
    except Exception as exc:  # noqa: BLE001 - never a traceback for operators
        LOG.debug("command failed", exc_info=True)
        print("poolmgr-manage: %s: %s" % (
            type(exc).__name__, strutils.mask_password(str(exc))),
            file=sys.stderr)
        return EXIT_FAILED
    return result or EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
