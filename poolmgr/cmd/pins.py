"""``host register --pin/--repin`` and the TLS part of ``host check``.

A pin is the SHA-256 fingerprint of a host's xapi certificate. Fetching
one is a TLS handshake and nothing else: no request, no credentials.
"""

import ssl
import sys
import urllib.parse

from poolmgr.db import api as db_api
from poolmgr.xenapi import tls

# ``--pin`` without a value: fetch the certificate the host presents.
FETCH = "fetch"

_MISMATCH_HINT = (
    "the host presents a certificate other than its pin: if it was "
    "replaced on purpose (xe host-refresh-server-certificate), run "
    "'poolmgr-manage host register %s %s --repin'; otherwise treat it as "
    "an interception")
_UNVERIFIED_HINT = (
    "the certificate did not verify: xapi's own certificates are "
    "self-signed; pin it ('poolmgr-manage host register %s %s --pin') or "
    "set [xenserver] ca_file to the CA that signed it")


class PinError(Exception):
    """A pin option that cannot be carried out; ``usage``: the operator's
    input is wrong (exit 2) rather than the host (exit 1)."""

    def __init__(self, message, usage=False):
        super().__init__(message)
        self.usage = usage


class Choice:
    """What ``host register`` does with the pin, decided before it writes."""

    def __init__(self, fingerprint=None, described=None, given=False,
                 old=None, repin=False):
        self.fingerprint = fingerprint
        self.described = described
        self.given = given
        self.old = old or {}
        self.repin = repin

    @property
    def old_pin(self):
        return self.old.get("sha256_fingerprint")


def _old_row(compute_host):
    try:
        return db_api.get_host(compute_host)
    except db_api.NotFound:
        return None


def _fetch(conf, url):
    try:
        return tls.fetch_certificate(
            url, timeout=min(10.0, conf.xenserver.call_timeout))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise PinError("cannot read the certificate of %s: %s" % (
            url, exc or type(exc).__name__))


def choose(conf, args, url):
    """The Choice for ``args.pin`` / ``args.repin``; raises PinError."""
    old = _old_row(args.compute_host)
    if args.pin is None and not args.repin:
        return Choice(old=old)
    if urllib.parse.urlsplit(url).scheme != "https":
        raise PinError("--pin and --repin need an https:// XAPI_URL",
                       usage=True)
    if args.pin not in (None, FETCH):
        try:
            fingerprint = tls.normalise_fingerprint(args.pin)
        except ValueError as exc:
            raise PinError("--pin %s: %s" % (args.pin, exc), usage=True)
        try:
            described = _fetch(conf, url)
        except PinError:
            described = None
        return Choice(fingerprint, described, given=True, old=old)
    described = _fetch(conf, url)
    fingerprint = described["sha256_fingerprint"]
    old_pin = (old or {}).get("sha256_fingerprint")
    if not args.repin and old_pin and old_pin != fingerprint:
        raise PinError(
            "%s is pinned to %s but presents %s; if its certificate was "
            "replaced on purpose, pass --repin" % (
                args.compute_host, old_pin, fingerprint))
    return Choice(fingerprint, described, old=old, repin=args.repin)


def store(args, choice, url):
    """Write the pin chosen and say what was done."""
    host = args.compute_host
    if choice.fingerprint is None:
        if choice.old_pin and choice.old.get("xapi_url") != url:
            # NOTE(fail-closed): the pin stays; were it dropped, a new
            # address would silently fall back to CA verification.
            print("%s keeps its pin %s; pass --repin if XAPI_URL is another "
                  "host now" % (host, choice.old_pin))
        return
    db_api.set_host_fingerprint(host, choice.fingerprint)
    # NOTE(due): a pool waiting on this host's certificate is looked at
    # now, not after its backoff.
    for aggregate_id in {m["aggregate_id"] for m in db_api.list_all_members()
                         if m["host"] == host}:
        db_api.mark_due(aggregate_id)
    if choice.repin and choice.old_pin and \
            choice.old_pin != choice.fingerprint:
        print("repinned %s: SHA256 %s (was %s)" % (host, choice.fingerprint,
                                                   choice.old_pin))
    else:
        print("pinned %s: SHA256 %s%s" % (host, choice.fingerprint,
                                          " (given)" if choice.given else ""))
    described = choice.described
    if described is None:
        print("  (not compared: the host could not be reached now)")
        return
    print("  subject %s, issuer %s, expires %s (%d days)" % (
        described["subject"], described["issuer"], described["not_after"],
        described["days_left"]))
    if described["sha256_fingerprint"] != choice.fingerprint:
        print("poolmgr-manage: WARNING: %s presents SHA256 %s, not the pin; "
              "every connection to it is refused (TLS_PIN_MISMATCH) until "
              "it presents the pinned certificate" % (
                  host, described["sha256_fingerprint"]), file=sys.stderr)


def check_report(conf, host, report):
    """The certificate part of ``host check``: what the host presents, its
    pin, days to expiry; fills the hint of a TLS_PIN_MISMATCH."""
    url = host["xapi_url"]
    pin = host.get("sha256_fingerprint")
    extra = {"pinned_sha256_fingerprint": pin, "tls_pinned": bool(pin)}
    if urllib.parse.urlsplit(url).scheme == "https":
        try:
            described = _fetch(conf, url)
        except PinError as exc:
            extra["certificate_error"] = str(exc)
        else:
            extra.update(
                sha256_fingerprint=described["sha256_fingerprint"],
                certificate_subject=described["subject"],
                certificate_expires=described["not_after"],
                certificate_days_left=described["days_left"])
            if pin:
                extra["tls_verified"] = \
                    described["sha256_fingerprint"] == pin
    if report.get("error_code") == "TLS_PIN_MISMATCH":
        extra["tls_verified"] = False
        extra["hint"] = _MISMATCH_HINT % (host["compute_host"], url)
    elif report.get("error_code") == "TLS_ERROR" and not pin:
        extra["hint"] = _UNVERIFIED_HINT % (host["compute_host"], url)
    return extra
