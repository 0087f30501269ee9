"""Counters: monotonic totals that retention never reaches."""


import functools

from oslo_db import api as oslo_db_api
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql

from poolmgr.db import models
from poolmgr.db.session import _writer, _reader, _clip


# NOTE(counters): Prometheus ``_total`` families must never go backwards,
# and `db purge` deletes log and journal rows. So whatever writes a row
# bumps its counter in the same transaction, and status and /metrics read
# only this small table (no GROUP BY over millions of rows).
_SEP = "|"
NOTIFICATIONS = "notifications"
DUPLICATES = "duplicates"
OPERATIONS = "operations"
SKIPPED = "skipped"
# Counter names are at most 128 characters; labels are clipped to fit.
_MAX_LABEL = 64


def _counter(family, *labels):
    return _SEP.join([family] + [_clip(str(label), _MAX_LABEL)
                                 for label in labels])


def _bump(session, counts, text=None):
    """Add ``{name: n}`` to the counters inside the caller's transaction.

    ``text``: the caller's eventlog._SQLText, to send them as SQL text.
    """
    rows = [{"name": name, "value": value}
            for name, value in sorted(counts.items()) if value]
    if not rows:
        return
    if text is not None:
        text.insert(_MYSQL_BUMP, rows)
        return
    # A Core connection or an ORM session (the caller's transaction).
    dialect = (session.dialect if hasattr(session, "dialect")
               else session.get_bind().dialect).name
    # NOTE(upsert): one statement per transaction whatever the number of
    # names (an executemany the driver sends as one multi-row INSERT; the
    # statement is built once, so it is compiled once); rows in name order
    # so concurrent writers lock them in one order and queue instead of
    # deadlocking.
    if dialect in ("mysql", "mariadb"):
        session.execute(_MYSQL_BUMP, rows)
    elif dialect == "sqlite":
        session.execute(_sqlite_bump(), rows)
    else:
        table = models.Counter.__table__
        for row in rows:
            found = session.execute(sa.select(table.c.value).where(
                table.c.name == row["name"]).with_for_update()).first()
            if found is None:
                session.execute(table.insert().values(**row))
            else:
                session.execute(table.update().where(
                    table.c.name == row["name"]).values(
                    value=table.c.value + row["value"]))


def _mysql_bump():
    table = models.Counter.__table__
    mysql = sa_mysql.insert(table)
    return mysql.on_duplicate_key_update(
        value=table.c.value + mysql.inserted.value)


_MYSQL_BUMP = _mysql_bump()


@functools.lru_cache(maxsize=None)
def _sqlite_bump():
    # NOTE(sqlite-dialect): imported on SQLite's first use only (the demo
    # and unit tests): a daemon on MySQL does not map SQLAlchemy's SQLite
    # dialect package (0.7 MB in each of its workers).
    from sqlalchemy.dialects import sqlite as sa_sqlite
    table = models.Counter.__table__
    sqlite = sa_sqlite.insert(table)
    return sqlite.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={"value": table.c.value + sqlite.excluded.value})


@oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True)
def add_counters(counts):
    """Add ``{name: n}`` to the counters in a transaction of their own."""
    with _writer() as session:
        _bump(session, counts)


def count_skipped(count):
    """Count messages the intake looked at and let go (not aggregates)."""
    add_counters({SKIPPED: count})


def counter_values(prefix=None):
    """{name: value} of the counters (those starting with ``prefix``)."""
    with _reader() as session:
        query = sa.select(models.Counter.name, models.Counter.value)
        if prefix:
            query = query.where(models.Counter.name.startswith(
                prefix, autoescape=True))
        return {name: value for name, value in session.execute(query)}


def duplicate_counts():
    """{event_type: count} of redelivered notifications acked unstored."""
    return {name.split(_SEP, 1)[1]: value for name, value in
            counter_values(DUPLICATES + _SEP).items()}


def skipped_count():
    """Messages that were not aggregate notifications, never stored."""
    return counter_values(SKIPPED).get(SKIPPED, 0)
