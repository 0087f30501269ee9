"""Small helpers shared by several rooms."""

import re
import urllib.parse

from oslo_utils import strutils

MASK = "***"

# A URL inside free text (a command line, an exception message): it ends at
# whitespace or a quote.
_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://[^\s'\"<>]+")
# SQLAlchemy dialects poolmgr may be pointed at; anything else is parsed as
# an oslo.messaging transport URL (which also reads http(s) and multi-host).
_DB_SCHEMES = ("mysql", "mariadb", "postgresql", "sqlite", "oracle", "mssql")

def _authority_quoted(url):
    """``url`` with '/', '?' and '#' in its credentials percent-encoded.

    NOTE(slash): operators paste passwords with a raw '/', which ends the
    authority for urllib; the credentials run up to the last '@' before the
    path, so they are quoted first and the parser then reads every host.
    """
    scheme, _, rest = url.partition("://")
    at = rest.rfind("@")
    if at < 0:
        return url
    end = rest.find("/", at)
    end = len(rest) if end < 0 else end
    hosts = []
    for chunk in rest[:end].split(","):
        creds, sep, host = chunk.rpartition("@")
        if sep:
            creds = "".join("%%%02X" % ord(c) if c in "/?#" else c
                            for c in creds)
        hosts.append(creds + sep + host)
    return "%s://%s%s" % (scheme, ",".join(hosts), rest[end:])


def _transport_passwords(url):
    """The passwords ``oslo_messaging.TransportURL.parse(conf, url)`` reads.

    NOTE(lean): the same steps as TransportURL.parse (urlparse, the netloc
    split on ',', each host's credentials up to its last '@', the password
    after the first ':' of them, unquoted), without importing oslo.messaging:
    it pulls in oslo.service and eventlet, which the master and the
    reconciler do not otherwise load (tests/unit/test_mask_url.py checks the
    two agree).
    """
    parsed = urllib.parse.urlparse(url)
    if not parsed.scheme:
        raise ValueError("no scheme")
    passwords = []
    for host in parsed.netloc.split(","):
        if "@" not in host:
            continue
        credentials = host.rsplit("@", 1)[0]
        if ":" in credentials:
            password = urllib.parse.unquote(credentials.split(":", 1)[1])
            if password:
                passwords.append(password)
    return passwords


def _passwords(url, scheme):
    if scheme.split("+")[0].lower() in _DB_SCHEMES:
        # NOTE(lean): SQLAlchemy only where a database URL is masked; the
        # daemon's master never loads it otherwise.
        from sqlalchemy.engine import make_url
        password = make_url(url).password
        return [str(password)] if password else []
    return _transport_passwords(_authority_quoted(url))


def _mask_credentials(url):
    """Everything between ':' and the last '@' of each host, masked."""
    return _URL_FALLBACK.sub(lambda m: m.group("user") + ":" + MASK + "@",
                             url)


_URL_FALLBACK = re.compile(r"(?P<user>(?:://|,)[^:/@,]*):[^@]*@")


def _mask_one(match):
    url = match.group(0)
    try:
        passwords = _passwords(url, match.group("scheme"))
    except Exception:  # noqa: BLE001 - unparsable: mask what looks like one
        return _mask_credentials(url)
    for password in sorted(set(passwords), key=len, reverse=True):
        for form in {password, urllib.parse.quote(password, safe=""),
                     urllib.parse.quote(password)}:
            url = url.replace(":%s@" % form, ":%s@" % MASK)
    return url


def mask_url(text):
    """Hide the passwords of every URL in ``text``, and key=value secrets.

    Each URL is read the way the library that parses it in poolmgr reads
    it (``sqlalchemy.engine.make_url`` for ``[database] connection``,
    ``oslo_messaging.TransportURL.parse``'s steps for transport URLs, with
    every host of a multi-host URL), then each password it holds is
    replaced by ``***``.
    """
    if text is None:
        return text
    masked = _URL.sub(_mask_one, str(text))
    return strutils.mask_password(masked)
