"""Host inventory: compute hosts, their xapi URLs and pins."""

import urllib.parse

import sqlalchemy as sa

from poolmgr.db import models
from poolmgr.db.session import NotFound, _writer, _reader, _now, _row_dict
from poolmgr.db.session import _writer_connection
from poolmgr.db.session import _reader_connection, _statement, _rows
from poolmgr.db.states import POOL_DISMISSED


def register_host(compute_host, xapi_url):
    """Map a Nova compute host to its xapi URL (insert or update).

    The pools that want the host (in their aggregate or among their
    members) are due at once: the operator just fixed what they waited on,
    so they need not sit out their backoff.
    """
    now = _now()
    with _writer() as session:
        host = session.get(models.Host, compute_host)
        created = host is None
        if created:
            session.add(models.Host(compute_host=compute_host,
                                    xapi_url=xapi_url, created_at=now,
                                    updated_at=now))
        else:
            if host.xapi_url != xapi_url:
                host.xapi_url = xapi_url
                host.xenserver_uuid = None
            host.updated_at = now
        _mark_pools_wanting_due(session, compute_host, now)
        return created


def _mark_pools_wanting_due(session, compute_host, now):
    rows = session.execute(sa.select(
        models.Aggregate.id, models.Aggregate.hosts).where(
        models.Aggregate.deleted.is_(False)))
    wanting = {agg_id for agg_id, hosts in rows
               if compute_host in (hosts or ())}
    wanting |= set(session.scalars(sa.select(
        models.PoolMember.aggregate_id).where(
        models.PoolMember.host == compute_host)))
    if wanting:
        session.execute(sa.update(models.Pool).where(
            models.Pool.aggregate_id.in_(sorted(wanting)),
            models.Pool.state != POOL_DISMISSED).values(
            due_at=now, updated_at=now))


def get_host(compute_host):
    with _reader() as session:
        row = session.get(models.Host, compute_host)
        if row is None:
            raise NotFound("host %s is not registered" % compute_host)
        return _row_dict(row)


def list_hosts():
    with _reader() as session:
        return [_row_dict(r) for r in session.scalars(
            sa.select(models.Host).order_by(models.Host.compute_host))]


def get_hosts(compute_hosts):
    """{compute_host: row} for the registered ones among ``compute_hosts``."""
    if not compute_hosts:
        return {}
    return {r["compute_host"]: r for r in _rows(_statement(
        "get_hosts", lambda: sa.select(_HOSTS).where(
            _HOSTS.c.compute_host.in_(sa.bindparam("b_names",
                                                   expanding=True)))),
        {"b_names": list(compute_hosts)})}


_HOSTS = models.Host.__table__


def remove_host(compute_host):
    with _writer() as session:
        row = session.get(models.Host, compute_host)
        if row is None:
            raise NotFound("host %s is not registered" % compute_host)
        session.delete(row)


def set_host_xenserver_uuid(compute_host, uuid):
    # One UPDATE (no SELECT first): the engine records what it observes.
    with _writer_connection() as session:
        session.execute(_statement("set_host_uuid", lambda: sa.update(
            _HOSTS).where(
            _HOSTS.c.compute_host == sa.bindparam("b_name"),
            sa.or_(_HOSTS.c.xenserver_uuid.is_(None),
                   _HOSTS.c.xenserver_uuid != sa.bindparam("b_uuid"))).values(
            xenserver_uuid=sa.bindparam("b_uuid"),
            updated_at=sa.bindparam("v_now"))),
            {"b_name": compute_host, "b_uuid": uuid, "v_now": _now()})


def set_host_fingerprint(compute_host, fingerprint):
    """Pin (or, with None, unpin) the host's xapi certificate."""
    with _writer() as session:
        row = session.get(models.Host, compute_host)
        if row is None:
            raise NotFound("host %s is not registered" % compute_host)
        row.sha256_fingerprint = fingerprint
        row.updated_at = _now()


def pins_for_address(address):
    """The pinned fingerprints of the hosts whose xapi URL is at
    ``address`` (usually one; an empty set when none is pinned)."""
    if not address:
        return frozenset()
    address = address.strip("[]").lower()
    with _reader_connection() as session:
        rows = session.execute(_statement("pins", lambda: sa.select(
            _HOSTS.c.xapi_url, _HOSTS.c.sha256_fingerprint).where(
            _HOSTS.c.sha256_fingerprint.is_not(None)))).all()
    return frozenset(
        pin for url, pin in rows
        if (urllib.parse.urlsplit(url).hostname or "").lower() == address)
