"""What every poolmgr-manage command shares: exit codes, the two errors
main() turns into one line on stderr, output, the operator's input checks."""

import json
import urllib.parse

from oslo_utils import strutils

from poolmgr.db import api as db_api
from poolmgr import utils

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# hosts.compute_host, like Nova's compute_nodes.host, is a String(255).
HOST_NAME_MAX = 255

class CommandError(Exception):
    """A failure to report to the operator in one line (exit 1)."""

class UsageError(Exception):
    """Bad input from the operator (exit 2)."""


def emit(args, data, table):
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


def get_host(name):
    try:
        return db_api.get_host(name)
    except db_api.NotFound as exc:
        raise CommandError(str(exc))


def find_aggregate(ref):
    try:
        return db_api.find_aggregate(ref)
    except db_api.NotFound as exc:
        raise CommandError(str(exc))
