"""poolmgr-manage host: register, list, show, remove, check."""

from oslo_utils import uuidutils

from poolmgr.cmd.manage_common import (
    EXIT_FAILED, CommandError, UsageError, emit, get_host,
    validate_compute_host, validate_xapi_url)
from poolmgr.cmd import pins
from poolmgr.cmd import views
from poolmgr.db import api as db_api
from poolmgr.db import compute_vms
from poolmgr import utils


def host_register(conf, args):
    validate_compute_host(args.compute_host)
    url = validate_xapi_url(args.xapi_url)
    pin = _pin_choice(conf, args, url)
    compute_vm = _compute_vm_choice(conf, args, url, pin.fingerprint)
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


def _compute_vm_choice(conf, args, url, pin=None):
    """--compute-vm: a uuid, ``auto`` (asks xapi, over a connection verified
    with ``pin`` when --pin/--repin chose one), ``none``; when omitted a
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
        return xcompute_vm.discover(conf, url, args.compute_host, pin)
    except xcompute_vm.NoSingleCandidate as exc:
        raise CommandError("--compute-vm auto: %s; candidates: %s; pass "
                           "--compute-vm UUID (or none)" % (
                               exc, "; ".join(exc.candidates) or "none"))
    except xerrors.XapiError as exc:
        raise CommandError("--compute-vm auto: cannot read VMs from %s: %s"
                           % (utils.mask_url(url), exc))


def host_list(conf, args):
    hosts = [views.host_view(h) for h in db_api.list_hosts()]
    emit(args, hosts, lambda: views.host_table(hosts))


def host_show(conf, args):
    host = views.host_view(get_host(args.compute_host))
    emit(args, host, lambda: views.record_table(host))


def host_remove(conf, args):
    get_host(args.compute_host)
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
    host = get_host(args.compute_host)
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
    emit(args, report, lambda: views.record_table(report))
    if not report.get("ok"):
        return EXIT_FAILED
