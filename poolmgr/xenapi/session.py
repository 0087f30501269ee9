"""One xapi session helper: login, TLS, timeouts, HOST_IS_SLAVE, errors.

Wraps the PyPI ``XenAPI`` client (XML-RPC). Every failure leaves here as a
``poolmgr.xenapi.errors.XapiError`` carrying xapi's code and params, so the
engine has one error family to classify (transient or permanent).

TLS: a host with a pinned certificate (``host register --pin``) is accepted
on exactly that certificate, checked before anything is sent
(TLS_PIN_MISMATCH otherwise); other https:// hosts are verified against
``[xenserver] ca_file`` or the system store. Pins are looked up by the
address a session talks to, so a HOST_IS_SLAVE redirection is checked
against the pin of the host it leads to.
"""

import http.client
import os
import socket
import ssl
import threading
import urllib.parse
import xmlrpc.client

from oslo_log import log as logging
import XenAPI

from poolmgr import utils
from poolmgr.xenapi import errors
from poolmgr.xenapi import tls
from poolmgr.xenapi import wire

LOG = logging.getLogger(__name__)

ORIGINATOR = "poolmgr"
# NOTE(redirects): one hop reaches the master; a second covers a master
# that changed while we were being redirected. More means a loop.
MAX_REDIRECTS = 3
JOIN_CALLS = ("pool.join", "pool.join_force")


def inventory_pins(url):
    """The pins registered for ``url``'s address (an empty set: none)."""
    # NOTE(pins): the inventory is the one source of pins, read where a
    # connection is made, so every SessionCache (engine, host check, pool
    # plan) honours them without its callers passing them along.
    from poolmgr.db import api as db_api
    if not db_api.is_configured():
        # No inventory, hence no pins: CA verification, the stricter rule.
        return frozenset()
    return db_api.pins_for_address(urllib.parse.urlsplit(url).hostname)


def swap_xapi_host(url, address):
    """``url`` with its host replaced by ``address``; scheme, port, path kept.

    As nova's swap_xapi_host (test_swapping, test_no_port, test_no_path),
    but on the parsed netloc so a user:password@ part or an address that
    also appears in the path are not mangled.
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        port = hostport[hostport.index("]") + 1:]
    else:
        host, sep, port = hostport.partition(":")
        port = sep + port
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    new_netloc = (userinfo + "@" if userinfo else "") + address + port
    return urllib.parse.urlunsplit(parts._replace(netloc=new_netloc))


class _TimeoutTransport(wire.FastParsing, xmlrpc.client.Transport):
    def __init__(self, timeout):
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class _TimeoutSafeTransport(wire.FastParsing, xmlrpc.client.SafeTransport):
    def __init__(self, timeout, context):
        super().__init__(context=context)
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def _context(verify, ca_file):
    """The TLS context of CA-verified (or, with ``verify`` off, unverified)
    sessions: one per (verify, ca_file, the file's mtime), shared.

    NOTE(shared-context): a default context holds the whole system CA
    store, about 0.8 MB; one per session was some 400 MB for 500 hosts.
    SSLContext is safe to share between threads. A CA file rewritten in
    place (mtime changes) gets a new context at the next login.
    """
    try:
        stamp = os.stat(ca_file).st_mtime_ns if ca_file else None
    except OSError:
        stamp = None        # ssl reports the missing file below
    key = (bool(verify), ca_file, stamp)
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(key)
        if context is None:
            if verify:
                context = ssl.create_default_context(cafile=ca_file)
            else:
                # NOTE(tls): only when an operator turned [xenserver]
                # verify_tls off for lab hosts with self-signed
                # certificates.
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            for old in [k for k in _CONTEXTS if k[:2] == key[:2]]:
                del _CONTEXTS[old]      # the file as it was before
            _CONTEXTS[key] = context
        return context


def _make_transport(url, timeout, verify, ca_file, pins=()):
    if urllib.parse.urlsplit(url).scheme == "https":
        if pins:
            return tls.PinnedTransport(pins, timeout)
        return _TimeoutSafeTransport(timeout, _context(verify, ca_file))
    return _TimeoutTransport(timeout)


class XapiSession:
    """A logged-in session to one host, re-established when needed.

    ``follow_master``: on HOST_IS_SLAVE (at login or on a call), move to
    the master the slave names and carry on there. Sessions used to read or
    mutate a pool follow; sessions used to look at one particular host (a
    joiner, an ejected host) do not, so that "is a slave" stays visible.
    """

    def __init__(self, url, username, password, timeout=60.0, verify=True,
                 ca_file=None, follow_master=True, pin_lookup=None,
                 local=False):
        self.requested_url = url
        # NOTE(local): session.slave_local_login_with_password, good only
        # on this host and for xapi's emergency calls: how a member whose
        # master is dead is reached (operations.md §1.1). It never follows.
        self.local = local
        if local:
            follow_master = False
        self.url = url
        self._username = username
        self._password = password
        self._timeout = timeout
        self._verify = verify
        self._ca_file = ca_file
        self.follow_master = follow_master
        self._pin_lookup = pin_lookup
        # "pin", "ca" or None (plain http, or [xenserver] verify_tls off):
        # how the current connection's peer was verified.
        self.verified_by = None
        self._xapi = None
        self._lock = threading.RLock()

    @property
    def masked_url(self):
        return utils.mask_url(self.url)

    def _pins(self, url):
        if self._pin_lookup is None or \
                urllib.parse.urlsplit(url).scheme != "https":
            return frozenset()
        return frozenset(self._pin_lookup(url) or ())

    def _new_client(self):
        pins = self._pins(self.url)
        https = urllib.parse.urlsplit(self.url).scheme == "https"
        self.verified_by = "pin" if pins else (
            "ca" if https and self._verify else None)
        return XenAPI.Session(self.url, transport=_make_transport(
            self.url, self._timeout, self._verify, self._ca_file, pins))

    def login(self):
        with self._lock:
            for _ in range(MAX_REDIRECTS + 1):
                client = self._new_client()
                if self.local:
                    self._translate(client.slave_local_login_with_password,
                                    "session.slave_local_login_with_password",
                                    self._username, self._password)
                    self._xapi = client
                    return self
                try:
                    self._translate(client.login_with_password,
                                    "session.login_with_password",
                                    self._username, self._password, "1.0",
                                    ORIGINATOR)
                except errors.XapiError as exc:
                    if exc.code == "HOST_IS_SLAVE" and self.follow_master \
                            and exc.params:
                        self._redirect(exc.params[0])
                        continue
                    raise
                self._xapi = client
                return self
            raise errors.XapiError("HOST_IS_SLAVE", ["redirect loop"],
                                   method="session.login_with_password",
                                   url=self.masked_url)

    def _redirect(self, address):
        new_url = swap_xapi_host(self.url, address)
        LOG.info("xapi at %s is a slave; following its master to %s",
                 self.masked_url, utils.mask_url(new_url))
        self.url = new_url
        self._xapi = None

    def call(self, method, *args):
        """Call ``method`` ("pool.join", "event.from", ...) with ``args``."""
        with self._lock:
            for _ in range(MAX_REDIRECTS + 1):
                if self._xapi is None:
                    self.login()
                if method in JOIN_CALLS:
                    self._check_join_transport(method, args)
                target = self._xapi.xenapi
                for part in method.split("."):
                    target = getattr(target, part)
                try:
                    return self._translate(target, method, *args)
                except errors.XapiError as exc:
                    if exc.code == "HOST_IS_SLAVE" and self.follow_master \
                            and exc.params:
                        self._redirect(exc.params[0])
                        continue
                    if exc.code in ("SESSION_INVALID", "CONNECTION_FAILED",
                                    "TLS_PIN_MISMATCH"):
                        # NOTE(restart): the host restarted (join, eject,
                        # designate) or dropped us; log in afresh next time
                        # (and read the pin afresh: --repin).
                        self._xapi = None
                    raise
            raise errors.XapiError("HOST_IS_SLAVE", ["redirect loop"],
                                   method=method, url=self.masked_url)

    def _check_join_transport(self, method, args):
        """pool.join carries the master's credentials: never to a joiner
        reached unverified when the master is pinned."""
        master_address = str(args[0]) if args else ""
        if self.verified_by is None and self._pins(
                swap_xapi_host("https://x/", master_address)):
            raise errors.XapiError(
                "TLS_UNVERIFIED_JOIN", [self.masked_url, master_address],
                method=method, url=self.masked_url)

    def _translate(self, fn, method, *args):
        try:
            return fn(*args)
        except tls.PinMismatch as exc:
            # NOTE(pin): raised after the handshake, before the request
            # was written: the host received no credentials.
            raise errors.XapiError("TLS_PIN_MISMATCH",
                                   [exc.expected, exc.presented],
                                   method=method,
                                   url=self.masked_url) from None
        except XenAPI.Failure as exc:
            details = list(exc.details or ["UNKNOWN"])
            raise errors.XapiError(details[0], details[1:], method=method,
                                   url=self.masked_url) from None
        except xmlrpc.client.Fault as exc:
            # NOTE(fault): XenAPI.py raises Fault 500 after three
            # SESSION_INVALID re-logins in a row, and 504 on a login timeout.
            text = str(exc.faultString)
            code = "SESSION_INVALID" if "valid session" in text else (
                "TIMEOUT" if exc.faultCode == 504 else "XMLRPC_FAULT")
            raise errors.XapiError(code, [text], method=method,
                                   url=self.masked_url) from None
        except xmlrpc.client.ProtocolError as exc:
            raise errors.XapiError("PROTOCOL_ERROR",
                                   [exc.errcode, exc.errmsg], method=method,
                                   url=self.masked_url) from None
        except ssl.SSLError as exc:
            raise errors.XapiUnreachable(
                "TLS: %s" % exc, method=method, url=self.masked_url,
                code="TLS_ERROR") from None
        except socket.timeout:
            raise errors.XapiUnreachable("timed out", method=method,
                                         url=self.masked_url,
                                         code="TIMEOUT") from None
        except (OSError, http.client.HTTPException) as exc:
            raise errors.XapiUnreachable(
                type(exc).__name__ + (": %s" % exc if str(exc) else ""),
                method=method, url=self.masked_url) from None

    def close(self):
        """Forget the login and close the connection, without a logout call.

        For a host that joined a pool: its xapi restarted as a slave, and
        the session went with its database (xapi.md §2.1, step 11).
        """
        with self._lock:
            client, self._xapi = self._xapi, None
        transport = getattr(client, "transport", None)
        if transport is not None:
            transport.close()

    def logout(self):
        with self._lock:
            client, self._xapi = self._xapi, None
        if client is None:
            return
        try:
            if self.local:
                client.xenapi.session.local_logout()
            else:
                client.xenapi.session.logout()
        except Exception:  # noqa: BLE001 - the host may be restarting
            LOG.debug("logout from %s failed; ignored", self.masked_url)


class SessionCache:
    """Sessions kept per (URL, follow_master), built from [xenserver]."""

    def __init__(self, conf, pin_lookup=inventory_pins):
        self._conf = conf
        self._pin_lookup = pin_lookup
        self._sessions = {}
        self._lock = threading.Lock()

    def get(self, url, follow_master=True):
        key = (url, follow_master)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                xs = self._conf.xenserver
                session = XapiSession(
                    url, xs.connection_username, xs.connection_password,
                    timeout=xs.call_timeout, verify=xs.verify_tls,
                    ca_file=xs.ca_file, follow_master=follow_master,
                    pin_lookup=self._pin_lookup)
                self._sessions[key] = session
            return session

    def drop(self, url, follow_master=False):
        """Forget one session (closed, no logout); True when one was kept.

        NOTE(joined): the engine reads a standalone host, and joins it,
        through its own (url, follow_master=False) session; once the host
        is a member, the pool is read on its master and that session only
        holds a socket and its objects (at 500 hosts: 400 of them).
        """
        with self._lock:
            session = self._sessions.pop((url, follow_master), None)
        if session is None:
            return False
        session.close()
        return True

    def keys(self):
        """The (url, follow_master) of every session kept."""
        with self._lock:
            return sorted(self._sessions)

    def fresh(self, url, follow_master=False, timeout=None, local=False):
        """An uncached session (for short probes with their own timeout);
        ``local``: a slave-local one (XapiSession NOTE(local))."""
        xs = self._conf.xenserver
        return XapiSession(url, xs.connection_username,
                           xs.connection_password,
                           timeout=timeout or xs.call_timeout,
                           verify=xs.verify_tls, ca_file=xs.ca_file,
                           follow_master=follow_master,
                           pin_lookup=self._pin_lookup, local=local)

    def close(self):
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.logout()
