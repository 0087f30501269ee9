"""Keeping the daemon's processes small (doc/source/design/processes.rst).

NOTE(defer): what the daemon's master imports is mapped into each of its
workers, so every MB there counts once per process in the RSS sum.
oslo.config imports, at its own import, libraries it uses only for some
option types or sources: rfc3986 (URI options) and stevedore
(``config_source`` drivers; the intake's oslo.messaging loads its driver
with it). Neither is used to parse poolmgr's configuration in the master
(1.6 MB there, and as much in the reconciler, which never reads them);
``defer`` puts a stand-in module in their place, and the first attribute
read on it (a URI option's value checked, a driver loaded) imports the
real library, in whichever process needs it. (netaddr is read in the
master itself: poolmgr.conf.metrics' HostAddressOpt checks its default
with it.)

NOTE(master-tls): oslo.log imports oslo_serialization.jsonutils, which
imports xmlrpc.client (for an isinstance check of its DateTime in
``to_primitive``), which imports http.client, which imports ssl, and with
it OpenSSL's libcrypto and libssl: 4.9 MB of the master's 29.8 MB, for a
process that opens no connection. Deferred there, ssl is loaded by the
first worker code that reads it (PyMySQL's and XenAPI's connections, the
rabbit driver), in that worker only.
"""

import importlib
import importlib.util
import os
import sys
import threading
import types

# Libraries oslo.config and oslo.log import but the master does not use
# (doc/source/design/processes.rst).
MASTER_DEFERRED = ("rfc3986", "stevedore", "ssl", "xmlrpc.client")

# NOTE(pymysql): PyMySQL's _auth imports these (and with them
# cryptography's Rust bindings, 8 MB) at its own import, for the RSA
# exchange of sha256_password and caching_sha2_password on a connection
# without TLS (MySQL 8 users' default plugin) only; MariaDB's
# mysql_native_password never reads them. Deferred in the workers, they
# are imported at that first RSA exchange instead.
PYMYSQL_DEFERRED = ("cryptography.hazmat.primitives.hashes",
                    "cryptography.hazmat.primitives.serialization",
                    "cryptography.hazmat.primitives.asymmetric.padding")

# NOTE(messaging): oslo.messaging's imports bring these at import time,
# for functions the intake never calls: psutil (oslo_utils.netutils'
# interface addresses, 0.9 MB) and yappi (oslo.service's eventlet
# backdoor profiler, 0.4 MB).
MESSAGING_DEFERRED = ("psutil", "yappi")

_LOCK = threading.RLock()
_HOOKED = False

# NOTE(arenas): glibc gives each thread that allocates an arena of its own,
# up to eight per core, and keeps what is freed in it for that thread. The
# workers' threads allocate under the GIL, one at a time, so those arenas
# buy no concurrency; they only keep freed memory apart. Two arenas took
# the 100 x 5 build-out's peak (three runs each, same window) from
# 151.7-152.5 to 149.6-150.3 MB, the build as fast. M_ARENA_MAX is
# mallopt's parameter -8 (malloc.h).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas=MALLOC_ARENAS):
    """Cap glibc's malloc arenas for the threads this process starts;
    True when set. An operator's MALLOC_ARENA_MAX (read by glibc at start)
    is left as it is, as is a libc other than glibc."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError):
        glibc = False
    if "MALLOC_ARENA_MAX" in os.environ or not glibc:
        return False
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):
        return False


def without_eventlet():
    """Keep eventlet (and greenlet, dnspython) out of a worker that is about
    to import oslo.messaging; True when it was kept out.

    NOTE(eventlet): importing oslo.messaging imports eventlet twice over,
    though the intake's listener runs on threads (``executor="threading"``)
    and nothing is monkey-patched: oslo_messaging.server imports
    oslo_service.service, whose default backend is eventlet's, and futurist
    imports eventlet whenever it is installed. Measured in one process
    with EVENTLET_NO_GREENDNS set, as the daemon sets it: oslo.messaging
    and its rabbit driver, 29.3 MB of RSS; with oslo.service on its
    threading backend (cotyledon, which the daemon runs on) and eventlet
    absent, 27.2 MB (without EVENTLET_NO_GREENDNS eventlet also loads
    dnspython: 46.8 MB). Too late once eventlet or oslo.messaging is
    imported, or when something chose oslo.service's eventlet backend: then
    nothing changes.
    """
    if "eventlet" in sys.modules or "oslo_messaging" in sys.modules:
        return False
    # An import of eventlet now fails as if it were not installed (futurist,
    # which oslo_service imports, then uses threads only). Set first: the
    # import of oslo_service.backend below brings futurist already.
    sys.modules["eventlet"] = None
    from oslo_service import backend
    chosen = backend.get_backend_type()
    if chosen not in (None, backend.BackendType.THREADING):
        del sys.modules["eventlet"]
        return False
    backend.init_backend(backend.BackendType.THREADING)
    return True


class _Deferred(types.ModuleType):
    """Stands in for a module not imported yet; imports it when read."""

    def __getattr__(self, attr):
        return getattr(_load(self.__name__), attr)

    def __repr__(self):
        return "<deferred module %r>" % self.__name__


def _load(name):
    module = sys.modules.get(name)
    if isinstance(module, _Deferred):
        # NOTE(threads): only the swap is locked; the import itself is
        # serialised by the import system's per-module lock, so two threads
        # reading a stand-in at once import the library once.
        with _LOCK:
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return importlib.import_module(name)


def defer(names=MASTER_DEFERRED):
    """Stand-ins for ``names`` not imported yet; returns the ones put.

    A name that cannot be found is left alone (its import fails as it
    would have). A submodule's stand-in is also set on its package (which
    is imported), so ``from package import name`` and ``package.name``
    both find it.
    """
    put = []
    with _LOCK:
        for name in names:
            if name in sys.modules:
                continue
            try:
                found = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                found = None
            if found is None:
                continue
            standin = _Deferred(name)
            sys.modules[name] = standin
            package, _, leaf = name.rpartition(".")
            if package:
                setattr(sys.modules[package], leaf, standin)
            put.append(name)
    return put


def deferred():
    """The names still standing in (not imported by anyone yet)."""
    return sorted(name for name, module in list(sys.modules.items())
                  if isinstance(module, _Deferred))


def share_mysql_tls_context():
    """One PyMySQL TLS context per process for "TLS if the server offers
    it" connections, instead of one per connection; returns True once set.

    NOTE(tls-context): with no ``ssl_*`` option PyMySQL (1.2) still builds
    a default context (the system's 144 CAs loaded, 0.87 MB) for every
    connection, in case the server offers TLS; it verifies nothing with it
    (CERT_NONE, no hostname check) and keeps it for the connection's life:
    22.6 MB for the reconciler's 26 connections where one is enough.
    A context is safe to share between threads; its settings depend on
    the (empty) options only. Connections with TLS options keep their own.
    Hooked on SQLAlchemy's ``do_connect`` (before the first connection,
    once the dialect has imported PyMySQL), so nothing is imported early.
    """
    global _HOOKED
    with _LOCK:
        if _HOOKED:
            return False
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        event.listen(Engine, "do_connect", _before_connect)
        _HOOKED = True
    return True


def _before_connect(dialect, conn_rec, cargs, cparams):
    if dialect.driver == "pymysql":
        connections = sys.modules.get("pymysql.connections")
        if connections is not None:
            _share_context(connections.Connection)


def _share_context(cls):
    original = cls.__dict__.get("_create_ssl_ctx")
    if original is None or getattr(original, "poolmgr_shared", False):
        return
    shared = []

    def _create_ssl_ctx(self, sslp, *args, **kwargs):
        if isinstance(sslp, dict) and not sslp and not args and not kwargs:
            with _LOCK:
                if not shared:
                    shared.append(original(self, sslp))
                return shared[0]
        return original(self, sslp, *args, **kwargs)

    _create_ssl_ctx.poolmgr_shared = True
    with _LOCK:
        if not getattr(cls.__dict__.get("_create_ssl_ctx"), "poolmgr_shared",
                       False):
            cls._create_ssl_ctx = _create_ssl_ctx
