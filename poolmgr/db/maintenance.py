"""Maintenance operations: a drain, undrain or rolling reboot per pool.

One running operation per pool at a time, enforced by the table's unique
``running_aggregate_id`` (NOTE(one-at-a-time) in poolmgr.db.models); the
running one's id is also on the pool row (``pools.maintenance_id``).
"""

from oslo_db import exception as db_exc
import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import _now, _reader, _row_dict, _writer
from poolmgr.db.states import MAINT_RUNNING

_OPS = models.MaintenanceOperation


class OperationRunning(Exception):
    """The pool has a maintenance operation running already."""

    def __init__(self, running):
        self.running = running
        super().__init__(running)


def start_maintenance(aggregate_id, kind, hosts, phase, current_host=None):
    """A new running operation; OperationRunning when one runs already."""
    now = _now()
    try:
        with _writer() as session:
            row = _OPS(aggregate_id=aggregate_id,
                       running_aggregate_id=aggregate_id, kind=kind,
                       hosts=list(hosts), current_host=current_host,
                       phase=phase, status=MAINT_RUNNING, detail={},
                       created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            created = _row_dict(row)
            session.execute(sa.update(models.Pool).where(
                models.Pool.aggregate_id == aggregate_id).values(
                maintenance_id=row.id))
    except db_exc.DBDuplicateEntry:
        raise OperationRunning(running_maintenance(aggregate_id))
    return created


def running_maintenance(aggregate_id):
    with _reader() as session:
        return _row_dict(session.scalars(sa.select(_OPS).where(
            _OPS.running_aggregate_id == aggregate_id)).first())


def get_maintenance(op_id):
    with _reader() as session:
        return _row_dict(session.get(_OPS, op_id))


def latest_maintenance(aggregate_ids=None):
    """{aggregate id: its newest operation} (of ``aggregate_ids``)."""
    with _reader() as session:
        newest = sa.select(sa.func.max(_OPS.id)).group_by(_OPS.aggregate_id)
        query = sa.select(_OPS).where(_OPS.id.in_(newest))
        if aggregate_ids is not None:
            query = query.where(_OPS.aggregate_id.in_(list(aggregate_ids)))
        return {r.aggregate_id: _row_dict(r) for r in session.scalars(query)}


def update_maintenance(op_id, **fields):
    """Write phase, current_host, detail, ...; ``status`` other than
    running ends the operation (the pool may run another)."""
    fields["updated_at"] = _now()
    ended = fields.get("status", MAINT_RUNNING) != MAINT_RUNNING
    if ended:
        fields.update(running_aggregate_id=None, finished_at=_now())
    with _writer() as session:
        session.execute(sa.update(_OPS).where(_OPS.id == op_id).values(
            **fields))
        if ended:
            session.execute(sa.update(models.Pool).where(
                models.Pool.maintenance_id == op_id).values(
                maintenance_id=None))
