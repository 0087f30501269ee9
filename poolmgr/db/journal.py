"""The journal: a row before and after every mutating step."""


import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _reader, _now, _row_dict, _clip
from poolmgr.db.session import _writer_connection, _statement, _rows
from poolmgr.db.states import OP_STARTED
from poolmgr.db.counters import (
    _SEP, _MAX_LABEL, OPERATIONS, _counter, _bump, counter_values)


def journal_start(aggregate_id, kind, host=None, step=None, cause=None,
                  owner=None, generation=None, attempts=1):
    """Write the 'before' row of a mutating step; return its id."""
    with _writer_connection() as connection:
        result = connection.execute(_statement(
            "journal_start", lambda: _OPS.insert()), dict(
            aggregate_id=aggregate_id, kind=kind, host=host,
            step=_clip(step), status=OP_STARTED, attempts=attempts,
            cause=_clip(cause), owner=_clip(owner), generation=generation,
            started_at=_now()))
        # NOTE(counted-at-finish): the row is counted ``started`` when it
        # finishes, with its status (one counter statement a step, not
        # two); while it is in flight operation_counts reads it from the
        # journal.
        return result.inserted_primary_key[0]


_OPS = models.Operation.__table__


def _finish(fenced):
    """The UPDATE of journal_finish (``fenced``: with the holder's check)."""
    conditions = [_OPS.c.id == sa.bindparam("b_id"),
                  _OPS.c.status == OP_STARTED]
    if fenced:
        pools = models.Pool.__table__
        holder = sa.select(pools.c.aggregate_id).where(
            pools.c.aggregate_id == _OPS.c.aggregate_id,
            pools.c.lease_owner == sa.bindparam("b_owner"),
            pools.c.generation == sa.bindparam("b_generation"))
        conditions += [_OPS.c.owner == sa.bindparam("b_op_owner"),
                       _OPS.c.generation == sa.bindparam("b_generation"),
                       holder.exists()]
    return sa.update(_OPS).where(*conditions).values(
        status=sa.bindparam("v_status"),
        xapi_error_code=sa.bindparam("v_code"),
        xapi_error_params=sa.bindparam("v_params"),
        finished_at=sa.bindparam("v_finished"))


def journal_finish(op_id, status, xapi_error_code=None,
                   xapi_error_params=None, owner=None, generation=None,
                   kind=None):
    """Write the 'after' of a step: succeeded, failed or abandoned.

    Only a row still ``started`` is finished, so a row the next lease
    holder closed ``abandoned`` stays abandoned. With ``owner`` and
    ``generation`` the write is fenced like a mutation: it happens only if
    the row was started by that holder and the pool's lease is still
    theirs at that generation. Returns False when nothing was written (the
    caller lost its lease or the row was closed by someone else).
    ``kind``: the row's kind when the caller knows it (saves a SELECT).
    """
    fenced = owner is not None or generation is not None
    params = {"b_id": op_id, "v_status": status,
              "v_code": _clip(xapi_error_code),
              "v_params": (list(xapi_error_params)
                           if xapi_error_params is not None else None),
              "v_finished": _now()}
    if fenced:
        params.update(b_owner=owner, b_op_owner=_clip(owner),
                      b_generation=generation)
    with _writer_connection() as session:
        result = session.execute(_statement(("journal_finish", fenced),
                                            lambda: _finish(fenced)), params)
        if result.rowcount == 1:
            if kind is None:
                kind = session.scalar(sa.select(models.Operation.kind).where(
                    models.Operation.id == op_id))
            _bump(session, {_counter(OPERATIONS, kind, OP_STARTED, ""): 1,
                            _counter(OPERATIONS, kind, status,
                                     xapi_error_code or ""): 1})
        return result.rowcount == 1


def list_operations(aggregate_id=None, limit=100, kind=None, host=None):
    """The journal, newest first."""
    with _reader() as session:
        query = sa.select(models.Operation).order_by(
            models.Operation.id.desc()).limit(limit)
        if aggregate_id is not None:
            query = query.where(models.Operation.aggregate_id == aggregate_id)
        if kind is not None:
            query = query.where(models.Operation.kind == kind)
        if host is not None:
            query = query.where(models.Operation.host == host)
        return [_row_dict(r) for r in session.scalars(query)]


def unfinished_operations(aggregate_id):
    """Steps journaled as started but never finished (a crash mid-step)."""
    return _rows(_statement("unfinished_operations", lambda: sa.select(
        _OPS).where(_OPS.c.aggregate_id == sa.bindparam("b_aggregate_id"),
                    _OPS.c.status == OP_STARTED).order_by(_OPS.c.id)),
        {"b_aggregate_id": aggregate_id})


def get_aggregate_for_pass(aggregate_id):
    """(the aggregate's row or None, True when a step of its pool is still
    journaled ``started``): what a pass reads before it plans, in one
    SELECT.

    NOTE(stale-flag): a row left ``started`` is rare (a crash, a lost
    lease, a kill mid-step), so the pass asks whether there is one with
    the aggregate instead of listing them at every pass; only then does
    ``unfinished_operations`` read them (measured: 500 SELECTs fewer in
    the 100 x 5 build-out, one per pass).
    """
    rows = _rows(_statement("aggregate_for_pass", _aggregate_for_pass),
                 {"b_id": aggregate_id})
    if not rows:
        return None, False
    row = rows[0]
    return row, bool(row.pop("unfinished_steps"))


def _aggregate_for_pass():
    aggregates = models.Aggregate.__table__
    started = sa.select(_OPS.c.id).where(
        _OPS.c.aggregate_id == aggregates.c.id,
        _OPS.c.status == OP_STARTED).exists()
    return sa.select(aggregates, started.label("unfinished_steps")).where(
        aggregates.c.id == sa.bindparam("b_id"))


def operation_counts():
    """{(kind, status, xapi_error_code): count} of every step ever journaled.

    ``started`` counts steps begun, the other statuses steps finished; read
    from the counters, so a purge of the journal never lowers them, and
    for the steps in flight (NOTE(counted-at-finish)) from the journal's
    ``started`` rows (never purged; ix_operations_status finds them).
    """
    result = {}
    for name, value in counter_values(OPERATIONS + _SEP).items():
        _, kind, status, code = name.split(_SEP, 3)
        result[(kind, status, code or None)] = value
    for row in _rows(_statement("in_flight", lambda: sa.select(
            _OPS.c.kind, sa.func.count().label("n")).where(
            _OPS.c.status == OP_STARTED).group_by(_OPS.c.kind)), {}):
        key = (_clip(row["kind"], _MAX_LABEL), OP_STARTED, None)
        result[key] = result.get(key, 0) + row["n"]
    return result
