"""The enginefacade transaction context all repositories share.

``configure(conf)`` (or ``configure_url(url)``) must run first; calling it
again points every repository at another database (tests do this). The
context is held here only (``_CONTEXT``), so there is one per process.
"""

import threading

from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
from oslo_utils import timeutils

from poolmgr.conf import database as database_opts



_LOCK = threading.Lock()
_CONTEXT = None


class NotFound(Exception):
    """The row asked for does not exist."""


class _Ctx:
    """A fresh, throw-away context object for one enginefacade transaction."""


def configure(conf, **overrides):
    """Point the repository at ``[database] connection``."""
    # NOTE(own-options): poolmgr's retention options live in [database]
    # too; enginefacade would warn about each of them.
    ours = {opt.dest for opt in database_opts.OPTS}
    options = {k: v for k, v in conf.database.items()
               if k not in ("backend", "use_db_reconnect", "db_max_retries",
                            "db_retry_interval", "db_inc_retry_interval",
                            "db_max_retry_interval", "use_tpool")
               and k not in ours and v is not None}
    options.update(overrides)
    _configure(options)


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
    """
    return _context().writer.connection.using(_Ctx())


def _reader_connection():
    return _context().reader.connection.using(_Ctx())


def _core_rows(model, *where, order_by=()):
    """Rows of ``model``'s table as the dicts ``_row_dict`` makes, read on
    a Core connection (no ORM objects: see _writer_connection)."""
    table = model.__table__
    query = sa.select(table).where(*where)
    if order_by:
        query = query.order_by(*order_by)
    with _reader_connection() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


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
