"""Typed reads of a whole pool and the mutating calls poolmgr makes.

A pool is read on its master in one ``event.from`` call (token "" returns
every object of the listed classes as an ``add`` event: xapi.md §7); hosts
without event.from get six ``get_all_records`` calls instead. Either way
the cost does not grow with the number of hosts, SRs or PBDs.
"""

from oslo_log import log as logging

from poolmgr.xenapi import errors
from poolmgr.xenapi import records

LOG = logging.getLogger(__name__)

_CLASS_NAMES = {"pool": "pool", "host": "host",
                "host_metrics": "host_metrics", "sr": "SR", "pbd": "PBD",
                "vm": "VM"}
# NOTE(timeout): with token "" xapi answers at once (every object is an
# event); the timeout only matters for a pool with no objects at all.
_EVENT_FROM_TIMEOUT = 1.0


def read_pool(session):
    """A records.PoolSnapshot of the pool ``session`` is logged in to."""
    tables = None
    if getattr(session, "event_from_supported", True):
        try:
            tables = _read_with_event_from(session)
        except errors.XapiError as exc:
            if exc.code not in ("MESSAGE_METHOD_UNKNOWN",
                                "EVENT_SUBSCRIPTION_PARSE_FAILURE"):
                raise
            session.event_from_supported = False
    if tables is None:
        tables = {cls: session.call("%s.get_all_records" % name)
                  for cls, name in _CLASS_NAMES.items()}
    return records.PoolSnapshot.from_records(
        tables["pool"], tables["host"], tables["host_metrics"], tables["sr"],
        tables["pbd"], tables["vm"], url=session.url)


def _read_with_event_from(session):
    batch = session.call("event.from", list(records.CLASSES), "",
                         _EVENT_FROM_TIMEOUT)
    tables = {cls: {} for cls in records.CLASSES}
    for event in batch.get("events", []):
        cls = str(event.get("class", "")).lower()
        if cls not in tables or event.get("operation") == "del":
            continue
        snapshot = event.get("snapshot")
        if snapshot is not None:
            tables[cls][event["ref"]] = snapshot
    return tables


# -- mutations (each runs on the session the caller chose) --------------------

def set_pool_name(session, pool_ref, name):
    session.call("pool.set_name_label", pool_ref, name)


def join_pool(session, master_address, username, password, force=False):
    """pool.join (or join_force) on the JOINING host's session."""
    method = "pool.join_force" if force else "pool.join"
    session.call(method, master_address, username, password)


def eject_host(session, host_ref):
    """pool.eject on the MASTER's session."""
    session.call("pool.eject", host_ref)


def designate_new_master(session, host_ref):
    session.call("pool.designate_new_master", host_ref)


def plug_pbd(session, pbd_ref):
    try:
        session.call("PBD.plug", pbd_ref)
    except errors.XapiError as exc:
        if exc.code != "DEVICE_ALREADY_ATTACHED":
            raise


def create_pbd(session, host_ref, sr_ref, device_config):
    """PBD.create + PBD.plug; returns the new PBD's ref."""
    pbd_ref = session.call("PBD.create", {
        "host": host_ref, "SR": sr_ref,
        "device_config": dict(device_config or {}), "other_config": {}})
    plug_pbd(session, pbd_ref)
    return pbd_ref
