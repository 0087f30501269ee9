"""Statements written out as SQL text for PyMySQL (NOTE(sql-text)).

``SQLText`` writes values the way PyMySQL's escaping would and sends
multi-row INSERTs (and any statement written with its ``value``) as one
statement each; poolmgr.db.eventlog's batch path builds on it (its log
rows, locking reads and seen ids), and poolmgr.db.counters and
poolmgr.db.mirror send theirs through the instance it passes them.
"""

import datetime
import json
import re

from poolmgr.db import models


# NOTE(sql-text): on MySQL through PyMySQL the batch's multi-row INSERTs
# (the log rows, about one per message, the aggregates and the counters)
# are written out as SQL text here, the way PyMySQL's executemany would
# write them, and sent as one statement each (exec_driver_sql, so errors
# still pass through oslo.db's filters: DBDuplicateEntry for the race
# of eventlog's NOTE(race), deadlocks for the retry). PyMySQL's own way
# costs most of the batch's CPU: SQLAlchemy processes each row's
# parameters, PyMySQL escapes every string with str.translate (about 60
# ns a character: a JSON column of 400 characters took 20 us) and formats
# every datetime with str.format. Here a string without a character to
# escape is quoted as it is, one with some goes through str.replace (the
# same table as PyMySQL's escape_string, or quote doubling under
# NO_BACKSLASH_ESCAPES), a naive datetime is written by isoformat() in C,
# and any other value by PyMySQL's own escape().
_TO_ESCAPE = re.compile("[%s]" % re.escape("\\\0\n\r\032\"'"))
_ESCAPES = (("\\", "\\\\"), ("\0", "\\0"), ("\n", "\\n"),
            ("\r", "\\r"), ("\032", "\\Z"), ('"', '\\"'),
            ("'", "\\'"))
_TEMPLATES = {}


class SQLText:
    """Multi-row INSERTs as SQL text on one PyMySQL connection."""

    def __init__(self, connection):
        # NOTE(lazy): PyMySQL is only imported where it is the driver.
        from pymysql.constants import SERVER_STATUS
        self.connection = connection
        dbapi = connection.connection.dbapi_connection
        self.escape = dbapi.escape
        self.quote_only = bool(
            dbapi.server_status
            & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)

    @staticmethod
    def usable(connection):
        return (connection.dialect.name in ("mysql", "mariadb")
                and connection.dialect.driver == "pymysql")

    def string(self, value):
        if _TO_ESCAPE.search(value) is None:
            return "'" + value + "'"
        if self.quote_only:
            return "'" + value.replace("'", "''") + "'"
        for char, escaped in _ESCAPES:
            value = value.replace(char, escaped)
        return "'" + value + "'"

    def value(self, value):
        kind = type(value)
        if kind is str:
            return self.string(value)
        if value is None:
            return "NULL"
        if kind is int:
            return str(value)
        if kind is bool:
            return "1" if value else "0"
        if kind is datetime.datetime and value.tzinfo is None:
            return "'" + value.isoformat(" ") + "'"
        return self.escape(value)

    def template(self, statement, keys):
        """(prefix, column names, postfix, JSON columns) of ``statement``,
        an INSERT of one row with the columns ``keys``; None when
        SQLAlchemy would add values of its own (column defaults)."""
        dialect = self.connection.dialect
        key = (statement, keys, dialect.name, dialect.server_version_info)
        found = _TEMPLATES.get(key, False)
        if found is False:
            from pymysql import cursors
            compiled = statement.compile(dialect=dialect,
                                         column_keys=list(keys))
            match = cursors.RE_INSERT_VALUES.match(str(compiled))
            names = list(compiled.positiontup or re.findall(
                r"%\(([^)]+)\)s", match.group(2))) if match else []
            json_names = [c.name for c in statement.table.columns
                          if c.name in names
                          and isinstance(c.type, models.JSONEncoded)]
            found = None
            if match and names and set(names) <= set(keys):
                found = (match.group(1) % (), names,
                         (match.group(3) or "") % (), json_names)
            _TEMPLATES[key] = found
        return found

    def insert(self, statement, rows):
        """``statement`` (an INSERT of one row) with ``rows`` (dicts with
        the same keys)."""
        if not rows:
            return
        template = self.template(statement, tuple(rows[0]))
        if template is None:
            self.connection.execute(statement, rows)
            return
        prefix, names, postfix, json_names = template
        value = self.value
        parts = []
        for row in rows:
            if json_names:
                # NOTE(json): as models.JSONEncoded writes it.
                row = dict(row)
                for name in json_names:
                    if row[name] is not None:
                        row[name] = json.dumps(row[name], sort_keys=True)
            parts.append("(" + ",".join([value(row[name])
                                         for name in names]) + ")")
        self.execute(prefix, parts, postfix)

    def run(self, sql):
        """One statement written out (values through value()); its rows."""
        return self.connection.exec_driver_sql(
            sql, execution_options={"no_parameters": True})

    def id_list(self, ids):
        return ",".join([self.value(i) for i in ids])

    def execute(self, prefix, parts, postfix=""):
        if not parts:
            return
        # NOTE(size): as PyMySQL's executemany, at most about 1 MB per
        # statement (_MAX_STATEMENT characters, up to 4 bytes each).
        size, start = len(prefix) + len(postfix), 0
        for index, part in enumerate(parts):
            size += len(part) + 1
            if size > _MAX_STATEMENT and index > start:
                self._send(prefix + ",".join(parts[start:index]) + postfix)
                start, size = index, len(prefix) + len(postfix) + len(part)
        self._send(prefix + ",".join(parts[start:]) + postfix)

    def _send(self, sql):
        self.run(sql)


_MAX_STATEMENT = 1024000 // 4
