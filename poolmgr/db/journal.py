"""The journal: a row before and after every mutating step."""


import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _reader, _now, _row_dict, _clip
from poolmgr.db.session import _core_rows, _writer_connection
from poolmgr.db.states import OP_STARTED
from poolmgr.db.counters import (
    _SEP, OPERATIONS, _counter, _bump, counter_values)


def journal_start(aggregate_id, kind, host=None, step=None, cause=None,
                  owner=None, generation=None, attempts=1):
    """Write the 'before' row of a mutating step; return its id."""
    with _writer_connection() as connection:
        result = connection.execute(models.Operation.__table__.insert().values(
            aggregate_id=aggregate_id, kind=kind, host=host,
            step=_clip(step), status=OP_STARTED, attempts=attempts,
            cause=_clip(cause), owner=_clip(owner), generation=generation,
            started_at=_now()))
        _bump(connection, {_counter(OPERATIONS, kind, OP_STARTED, ""): 1})
        return result.inserted_primary_key[0]


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
    conditions = [models.Operation.id == op_id,
                  models.Operation.status == OP_STARTED]
    if owner is not None or generation is not None:
        holder = sa.select(models.Pool.aggregate_id).where(
            models.Pool.aggregate_id == models.Operation.aggregate_id,
            models.Pool.lease_owner == owner,
            models.Pool.generation == generation)
        conditions += [models.Operation.owner == _clip(owner),
                       models.Operation.generation == generation,
                       holder.exists()]
    with _writer_connection() as session:
        result = session.execute(sa.update(models.Operation).where(
            *conditions).values(
            status=status, xapi_error_code=_clip(xapi_error_code),
            xapi_error_params=(list(xapi_error_params)
                               if xapi_error_params is not None else None),
            finished_at=_now()).execution_options(
            synchronize_session=False))
        if result.rowcount == 1:
            if kind is None:
                kind = session.scalar(sa.select(models.Operation.kind).where(
                    models.Operation.id == op_id))
            _bump(session, {_counter(OPERATIONS, kind, status,
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
    return _core_rows(models.Operation,
                      models.Operation.aggregate_id == aggregate_id,
                      models.Operation.status == OP_STARTED,
                      order_by=[models.Operation.id])


def operation_counts():
    """{(kind, status, xapi_error_code): count} of every step ever journaled.

    ``started`` counts steps begun, the other statuses steps finished; read
    from the counters, so a purge of the journal never lowers them.
    """
    result = {}
    for name, value in counter_values(OPERATIONS + _SEP).items():
        _, kind, status, code = name.split(_SEP, 3)
        result[(kind, status, code or None)] = value
    return result
