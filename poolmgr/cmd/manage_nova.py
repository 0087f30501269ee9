"""poolmgr-manage nova sync and host import (Nova's API)."""

from poolmgr.cmd.manage_common import (
    CommandError, UsageError, emit, validate_compute_host, validate_xapi_url)
from poolmgr.db import api as db_api


def _nova_client(conf):
    from poolmgr.nova import client as nova
    if not nova.configured(conf):
        raise CommandError("[nova] is not configured: set auth_type and its "
                           "options (see 'Nova' in the installation guide)")
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
    from poolmgr.nova import client as nova
    from poolmgr.nova import sync as novasync
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

    emit(args, data, text)


def host_import(conf, args):
    from poolmgr.nova import client as nova
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

    emit(args, data, text)
