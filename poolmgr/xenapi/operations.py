"""Typed reads of a whole pool and the mutating calls poolmgr makes.

A pool is read on its master in one ``event.from`` call (token "" returns
every object of the listed classes as an ``add`` event: xapi.md §7); hosts
without event.from get six ``get_all_records`` calls instead. Either way
the cost does not grow with the number of hosts, SRs or PBDs.

``PoolFeed`` follows one pool after that first read: it keeps the records
and the token, and each later read asks the master only for what changed
since the token (one call; an empty answer when nothing did).
"""

import threading

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
        tables = {cls: records.keep_all(
            cls, session.call("%s.get_all_records" % name))
            for cls, name in _CLASS_NAMES.items()}
    return _snapshot(tables, session.url)


def _read_with_event_from(session):
    return full_batch(session)[0]


def full_batch(session, keep=records.keep):
    """({class: {ref: record}}, token) of one full event.from read; each
    record as ``keep`` makes it (records.as_sent: as xapi sent it)."""
    batch = session.call("event.from", list(records.CLASSES), "",
                         _EVENT_FROM_TIMEOUT)
    tables = {cls: {} for cls in records.CLASSES}
    _apply(tables, batch, keep)
    return tables, batch.get("token")


def _apply(tables, batch, keep=records.keep):
    for event in batch.get("events", []):
        cls = str(event.get("class", "")).lower()
        if cls not in tables:
            continue
        if event.get("operation") == "del":
            tables[cls].pop(event.get("ref"), None)
            continue
        snapshot = event.get("snapshot")
        if snapshot is not None:
            # NOTE(fields): kept with the fields poolmgr reads only.
            tables[cls][event["ref"]] = keep(cls, snapshot)


def _snapshot(tables, url):
    return records.PoolSnapshot.from_records(
        tables["pool"], tables["host"], tables["host_metrics"], tables["sr"],
        tables["pbd"], tables["vm"], url=url, kept=True)


# NOTE(reset): codes after which a token says nothing reliable any more:
# xapi dropped events (EVENTS_LOST), does not know the token (a restarted
# or different master), or the session behind it is gone. A full read
# (token "") starts the feed again.
RESET_CODES = frozenset(["EVENTS_LOST", "EVENT_FROM_TOKEN_PARSE_FAILURE",
                         "EVENT_FROM_TOKEN_INVALID", "SESSION_INVALID",
                         "SESSION_NOT_REGISTERED"])


class PoolFeed:
    """One pool followed with event.from: a full read, then deltas.

    ``read`` returns a records.PoolSnapshot like ``read_pool``. The first
    read (and any read after a reset) is the full one; later reads send the
    token and apply the changed objects. It falls back to a full read when
    xapi answers a RESET_CODES error, when the session moved to another
    master (HOST_IS_SLAVE followed) or the pool's master changed, when the
    token went backwards (a fresh database), or when xapi's
    ``valid_ref_counts`` disagree with the records kept here.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.url = None
        self.token = None
        self.tables = None
        self.full_reads = 0
        self.delta_reads = 0
        self.last_reset = None     # why the last full read was needed
        self._previous = None      # (tables, url) before the last reset

    def reset(self, why=None):
        if self.tables is not None:
            # NOTE(last-seen): kept until a full read succeeds, for
            # last_snapshot (a master that stopped answering).
            self._previous = (self.tables, self.url)
        self.url = self.token = self.tables = None
        self.last_reset = why

    def last_snapshot(self):
        """The pool as the last good read left it (None before any),
        without calling xapi: what a master that stopped answering last
        showed."""
        with self._lock:
            tables, url = (self.tables, self.url) if self.tables is not None \
                else (self._previous or (None, None))
            if tables is None:
                return None
            try:
                return _snapshot(tables, url)
            except ValueError:
                return None

    def read(self, session, timeout=0.0):
        """The pool now; ``timeout`` > 0 long-polls for a change."""
        with self._lock:
            if not getattr(session, "event_from_supported", True):
                self.reset("no event.from")
                return read_pool(session)
            if self.tables is not None and self.url == session.url:
                try:
                    snap = self._delta(session, timeout)
                except errors.XapiError as exc:
                    if exc.code not in RESET_CODES:
                        raise
                    LOG.info("event.from on %s: %s; reading the pool in "
                             "full", session.masked_url, exc.code)
                    snap = None
                    self.last_reset = exc.code
                if snap is not None:
                    self.delta_reads += 1
                    return snap
            elif self.tables is not None:
                self.last_reset = "master changed"
            return self._full(session)

    def _full(self, session):
        why = self.last_reset
        self.reset(why)
        try:
            tables, token = full_batch(session)
        except errors.XapiError as exc:
            if exc.code not in ("MESSAGE_METHOD_UNKNOWN",
                                "EVENT_SUBSCRIPTION_PARSE_FAILURE"):
                raise
            session.event_from_supported = False
            return read_pool(session)
        snap = _snapshot(tables, session.url)
        self.tables, self.token, self.url = tables, token, session.url
        self._previous = None
        self.full_reads += 1
        return snap

    def _delta(self, session, timeout):
        url = session.url
        master = self._master_ref()
        batch = session.call("event.from", list(records.CLASSES), self.token,
                             float(timeout))
        if session.url != url:
            self.last_reset = "master changed"
            return None
        token = batch.get("token")
        if token is not None and self.token is not None and \
                str(token) < str(self.token):
            self.last_reset = "token went backwards"
            return None
        _apply(self.tables, batch)
        if self._master_ref() != master:
            self.last_reset = "master changed"
            return None
        counts = {str(k).lower(): v for k, v in
                  (batch.get("valid_ref_counts") or {}).items()}
        for cls, count in counts.items():
            if cls in self.tables and str(len(self.tables[cls])) != \
                    str(count):
                self.last_reset = "valid_ref_counts differ"
                return None
        self.token = token if token is not None else self.token
        try:
            return _snapshot(self.tables, url)
        except ValueError:
            self.last_reset = "no pool record"
            return None

    def _master_ref(self):
        pools = (self.tables or {}).get("pool") or {}
        return next(iter(pools.values()), {}).get("master")


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
