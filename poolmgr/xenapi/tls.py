"""Certificate pins: SHA-256 fingerprints of each host's xapi certificate.

xapi hosts serve self-signed certificates no CA signed. A pinned host is
accepted on exactly its pinned certificate, with or without a CA: the
handshake is made without CA verification, and the peer's certificate is
compared with the pin right after it, before a byte of the request (and so
of any credential) is sent. Hosts with no pin keep CA verification.
"""

import datetime
import hashlib
import http.client
import re
import socket
import ssl
import urllib.parse
import xmlrpc.client

from poolmgr.xenapi import wire


_HEX = re.compile(r"^[0-9A-F]{64}$")


class PinMismatch(Exception):
    """The host presented a certificate other than its pin (not an OSError:
    nothing below xmlrpc.client may retry it)."""

    def __init__(self, expected, presented):
        self.expected = expected
        self.presented = presented
        super().__init__("certificate %s is not the pinned %s" % (
            presented, expected))


def normalise_fingerprint(text):
    """``AB:CD:...`` (upper case, colons) from any spelling an operator
    may paste: lower case, colons or not, an ``sha256`` or
    ``SHA256 Fingerprint=`` prefix; ValueError if it is not SHA-256."""
    value = text.strip().upper()
    for prefix in ("SHA256 FINGERPRINT=", "SHA256:", "SHA-256:", "SHA256="):
        if value.startswith(prefix):
            value = value[len(prefix):]
    value = re.sub(r"[\s:]", "", value)
    if not _HEX.match(value):
        raise ValueError("a SHA-256 fingerprint is 64 hex digits "
                         "(colons optional)")
    return ":".join(value[i:i + 2] for i in range(0, 64, 2))


def fingerprint(der):
    """The pin of a DER certificate (as ``openssl x509 -fingerprint
    -sha256`` prints it)."""
    return normalise_fingerprint(hashlib.sha256(der).hexdigest())


def describe(der):
    """Fingerprint, subject, issuer and expiry of a DER certificate."""
    # NOTE(lean): cryptography (9 MB) only where a certificate is described
    # (poolmgr-manage); checking a pin is a SHA-256 of the DER bytes.
    from cryptography import x509
    cert = x509.load_der_x509_certificate(der)
    not_after = getattr(cert, "not_valid_after_utc", None) or \
        cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"sha256_fingerprint": fingerprint(der),
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": (not_after - now).days}


def _unverified_context():
    # NOTE(pin): CA verification is replaced by the pin comparison, never
    # merely switched off: PinnedHTTPSConnection checks before it sends.
    # No CA store is loaded (it would be unused, and costs ~50 ms).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def fetch_certificate(url, timeout=10.0):
    """The certificate an ``https://`` xapi URL presents, described.

    A TLS handshake and nothing else: no request, no credentials.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise ValueError("only https:// URLs have a certificate")
    with socket.create_connection((parts.hostname, parts.port or 443),
                                  timeout=timeout) as raw:
        with _unverified_context().wrap_socket(
                raw, server_hostname=parts.hostname) as conn:
            der = conn.getpeercert(binary_form=True)
    return describe(der)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that accepts only certificates in ``pins``."""

    def __init__(self, host, pins, timeout, context=None):
        super().__init__(host, timeout=timeout,
                         context=context or _unverified_context())
        self._pins = frozenset(pins)

    def connect(self):
        super().connect()
        presented = fingerprint(self.sock.getpeercert(binary_form=True))
        if presented not in self._pins:
            self.sock.close()
            self.sock = None
            raise PinMismatch(",".join(sorted(self._pins)), presented)


class PinnedTransport(wire.FastParsing, xmlrpc.client.Transport):
    """xmlrpc transport over PinnedHTTPSConnection, with a call timeout."""

    def __init__(self, pins, timeout):
        super().__init__()
        self._pins = frozenset(pins)
        self._timeout = timeout
        self._context = _unverified_context()

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        chost, self._extra_headers, _ = self.get_host_info(host)
        self._connection = host, PinnedHTTPSConnection(
            chost, self._pins, self._timeout, self._context)
        return self._connection[1]
