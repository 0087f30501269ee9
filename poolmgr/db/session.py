"""The enginefacade transaction context all repositories share.

``configure(conf)`` (or ``configure_url(url)``) must run first; calling it
again points every repository at another database (tests do this). The
context is held here only (``_CONTEXT``), so there is one per process.
"""

import contextlib
import threading

from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
from oslo_utils import timeutils

from poolmgr.conf import database as database_opts



_LOCK = threading.Lock()
_CONTEXT = None
_HELD = threading.local()


class NotFound(Exception):
    """The row asked for does not exist."""


class _Ctx:
    """A fresh, throw-away context object for one enginefacade transaction."""


def configure(conf, pool_users=None, **overrides):
    """Point the repository at ``[database] connection``.

    ``pool_users``: how many threads of this process use a connection at
    once; the pool keeps that many (``max_pool_size``) unless the operator
    set ``max_pool_size``. NOTE(churn): oslo.db's default of 5 under the
    reconciler's 24 threads made the pool open and close a connection for
    most checkouts (PyMySQL built a TLS context for each: 35 ms of CPU,
    before poolmgr.memory shared one).
    """
    # NOTE(own-options): poolmgr's retention options live in [database]
    # too; enginefacade would warn about each of them.
    ours = {opt.dest for opt in database_opts.OPTS}
    options = {k: v for k, v in conf.database.items()
               if k not in ("backend", "use_db_reconnect", "db_max_retries",
                            "db_retry_interval", "db_inc_retry_interval",
                            "db_max_retry_interval", "use_tpool")
               and k not in ours and v is not None}
    if pool_users and _default(conf, "max_pool_size"):
        options["max_pool_size"] = max(options.get("max_pool_size") or 0,
                                       pool_users)
    options.update(overrides)
    _configure(options)


def _default(conf, name):
    """True when [database] ``name`` is at its default (nobody set it)."""
    from oslo_config import cfg
    try:
        where = conf.get_location(name, "database")
    except (cfg.NoSuchOptError, AttributeError):
        return False
    return where is None or where.location == cfg.Locations.opt_default


def configure_url(url, **options):
    options["connection"] = url
    _configure(options)


def _configure(options):
    global _CONTEXT
    url = options.get("connection") or "sqlite://"
    if url.startswith("mysql://"):
        # NOTE(driver): PyMySQL is the pure-Python driver we depend on;
        # plain mysql:// would look for MySQLdb.
        url = "mysql+pymysql://" + url[len("mysql://"):]
    if url.startswith("mysql") and "charset=" not in url:
        # NOTE(charset): the tables are utf8mb4; oslo.db would otherwise
        # connect with 3-byte utf8 and refuse text outside the BMP.
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    options["connection"] = url
    # NOTE(retries): oslo.db would retry the initial connection
    # max_retries times with sleeps; callers decide instead (the CLI fails
    # fast, the intake requeues).
    options.setdefault("max_retries", 0)
    options["sqlite_fk"] = True
    ctx = enginefacade.transaction_context()
    ctx.configure(**options)
    with _LOCK:
        old, _CONTEXT = _CONTEXT, ctx
    if old is not None:
        try:
            old.writer.get_engine().dispose()
        except Exception:  # noqa: BLE001 - the old engine may never have run
            pass


def is_configured():
    """True once configure() pointed this module at a database."""
    return _CONTEXT is not None


def _context():
    if _CONTEXT is None:
        raise RuntimeError("poolmgr.db.api.configure() was not called")
    return _CONTEXT


def _writer():
    return _context().writer.using(_Ctx())


def _reader():
    return _context().reader.using(_Ctx())


def _writer_connection():
    """A Core connection in a writer transaction, without an ORM session.

    NOTE(core): for single statements on tables (the engine's leases, due
    times, member states) a session costs about a third more CPU than the
    same SQL on a connection (measured: 880 vs 560 us per UPDATE on
    MariaDB, benchmarks/profile_buildout.py shows where it adds up).
    Inside ``held_connection()`` the transaction runs on the thread's held
    connection instead of a connection checked out for it.
    """
    held = _held()
    if held is not None:
        return held
    return _context().writer.connection.using(_Ctx())


def _reader_connection():
    held = _held()
    if held is not None:
        return held
    return _context().reader.connection.using(_Ctx())


class _Held:
    """The connection ``held_connection()`` keeps for its thread."""

    def __init__(self):
        self.connection = None
        self.context = _CONTEXT


@contextlib.contextmanager
def held_connection():
    """Run this thread's Core transactions on one connection until exit.

    NOTE(held): each ``_writer_connection()``/``_reader_connection()``
    otherwise checks a connection out of the pool, which pings the server
    (oslo.db sets pool_pre_ping), and resets it on return: three round
    trips for one statement. The engine holds one connection for a whole
    pass instead. Every use is still its own transaction (BEGIN ...
    COMMIT, ROLLBACK on error), so what each repository function reads
    and writes, and when it commits, is unchanged; a use nested in
    another (or a context reconfigured meanwhile) falls back to a
    connection of its own. The connection is opened at the first use, so
    a database that is down fails where it failed before, and one lost
    mid-way is reopened by the next use (SQLAlchemy invalidates it).
    Measured on MariaDB (one SELECT by primary key): 556 us of CPU through
    the pool, 246 us on the held connection.
    """
    if getattr(_HELD, "state", None) is not None:
        yield
        return
    state = _HELD.state = _Held()
    try:
        yield
    finally:
        _HELD.state = None
        if state.connection is not None:
            state.connection.close()


def _held():
    state = getattr(_HELD, "state", None)
    if state is None or state.context is not _CONTEXT or _CONTEXT is None:
        return None
    if state.connection is None:
        state.connection = _context().writer.get_engine().connect()
    elif state.connection.in_transaction():
        return None
    return _held_transaction(state)


@contextlib.contextmanager
def _held_transaction(state):
    connection = state.connection
    try:
        with connection.begin():
            yield connection
    except BaseException:
        if connection.invalidated:
            # A lost connection: the next use opens a fresh one.
            state.connection = None
            connection.close()
        raise


_STATEMENTS = {}


def _statement(key, build):
    """``build()``, built once per ``key``: a statement with bound
    parameters (``sa.bindparam``) instead of values.

    NOTE(prebuilt): SQLAlchemy builds a statement object at every call and
    walks it for its cache key before it finds the compiled form; a
    statement kept here is built and keyed once. Measured on MariaDB on
    the held connection: update_pool 544 us of CPU built each time, 174 us
    prebuilt (a raw PyMySQL round trip is about 180 us).
    """
    try:
        return _STATEMENTS[key]
    except KeyError:
        statement = _STATEMENTS[key] = build()
        return statement


def _where(table, *names):
    """``table.c.NAME == :b_NAME`` for each of ``names``."""
    return [table.c[name] == sa.bindparam("b_" + name) for name in names]


def _at(name):
    """A bound parameter ``name`` holding a timestamp (the tables' type)."""
    from poolmgr.db import models
    return sa.bindparam(name, type_=models.Timestamp)


def _values(names):
    """SET/VALUES of ``names`` as bound parameters ``:v_NAME``."""
    return {name: sa.bindparam("v_" + name) for name in names}


def _rows(statement, params):
    """Rows of a (prebuilt) SELECT as dicts, on a Core connection."""
    with _reader_connection() as connection:
        return [dict(row._mapping)
                for row in connection.execute(statement, params)]


def get_engine():
    return _context().writer.get_engine()


def dispose():
    global _CONTEXT
    with _LOCK:
        old, _CONTEXT = _CONTEXT, None
    if old is not None:
        old.writer.get_engine().dispose()


def _now():
    return timeutils.utcnow()


def _stamp(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _row_dict(row):
    if row is None:
        return None
    result = {attr.key: getattr(row, attr.key)
              for attr in row.__mapper__.column_attrs}
    if "metadata_" in result:
        result["metadata"] = result.pop("metadata_")
    return result


def _clip(value, size=255):
    if value is None:
        return None
    return str(value)[:size]
