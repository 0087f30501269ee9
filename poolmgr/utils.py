"""Small helpers shared by several rooms."""

import re
import threading
import urllib.parse

from oslo_config import cfg
import oslo_messaging
from oslo_utils import strutils
from sqlalchemy.engine import make_url

MASK = "***"

# A URL inside free text (a command line, an exception message): it ends at
# whitespace or a quote.
_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://[^\s'\"<>]+")
# SQLAlchemy dialects poolmgr may be pointed at; anything else is parsed as
# an oslo.messaging transport URL (which also reads http(s) and multi-host).
_DB_SCHEMES = ("mysql", "mariadb", "postgresql", "sqlite", "oracle", "mssql")

_CONF_LOCK = threading.Lock()
_CONF = None


def _transport_conf():
    # NOTE(conf): TransportURL.parse registers its options on the conf it
    # gets; a private one keeps the service's configuration untouched.
    global _CONF
    with _CONF_LOCK:
        if _CONF is None:
            _CONF = cfg.ConfigOpts()
        return _CONF


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


def _passwords(url, scheme):
    if scheme.split("+")[0].lower() in _DB_SCHEMES:
        password = make_url(url).password
        return [str(password)] if password else []
    parsed = oslo_messaging.TransportURL.parse(_transport_conf(),
                                               _authority_quoted(url))
    return [h.password for h in parsed.hosts if h.password]


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

    Each URL is read by the library that parses it in poolmgr
    (``sqlalchemy.engine.make_url`` for ``[database] connection``,
    ``oslo_messaging.TransportURL`` for transport URLs, with every host of a
    multi-host URL), then each password it holds is replaced by ``***``.
    """
    if text is None:
        return text
    masked = _URL.sub(_mask_one, str(text))
    return strutils.mask_password(masked)
