"""The compute VM columns of the inventory (issue 12).

``hosts.compute_vm_uuid`` names the VM nova-compute runs in on that host
(classic topology; NULL: independent compute). ``hosts.compute_vm_stopped_at``
is set just before poolmgr shuts that VM down for a join and cleared once it
runs again: only a VM poolmgr stopped is ever started by poolmgr.
``operations.downtime_s`` holds a join's compute-node downtime.
"""

import sqlalchemy as sa

from poolmgr.db import api
from poolmgr.db import models


def set_compute_vm(compute_host, vm_uuid):
    """Record (or with None forget) the host's compute VM."""
    with api._writer() as session:
        host = session.get(models.Host, compute_host)
        if host is None:
            raise api.NotFound("host %s is not registered" % compute_host)
        if host.compute_vm_uuid != vm_uuid:
            host.compute_vm_uuid = vm_uuid
            host.compute_vm_stopped_at = None
            host.updated_at = api._now()


def mark_stopped(compute_host, vm_uuid, when=None):
    """poolmgr is about to shut the compute VM down: remember it did.

    Keeps an earlier stamp (a resumed pass), so the downtime counts from
    the first shutdown. Returns the stamp in force.
    """
    with api._writer() as session:
        host = session.get(models.Host, compute_host)
        if host is None or host.compute_vm_uuid != vm_uuid:
            return None
        if host.compute_vm_stopped_at is None:
            host.compute_vm_stopped_at = when or api._now()
        return host.compute_vm_stopped_at


def clear_stopped(compute_host):
    """The compute VM runs again (or is gone): poolmgr owes it nothing.

    Returns the stamp that was cleared (None if none was set)."""
    with api._writer() as session:
        host = session.get(models.Host, compute_host)
        if host is None or host.compute_vm_stopped_at is None:
            return None
        stamp = host.compute_vm_stopped_at
        host.compute_vm_stopped_at = None
        return stamp


def forget_gone(compute_host):
    """An eject wiped the compute VM (its disk was on the local SR)."""
    with api._writer() as session:
        host = session.get(models.Host, compute_host)
        if host is not None:
            host.compute_vm_uuid = None
            host.compute_vm_stopped_at = None
            host.updated_at = api._now()


def set_downtime(op_id, seconds):
    with api._writer() as session:
        session.execute(sa.update(models.Operation).where(
            models.Operation.id == op_id).values(downtime_s=seconds))
