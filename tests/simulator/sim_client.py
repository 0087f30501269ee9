"""Helpers for driving poolmgr-xapi-sim through the real PyPI ``XenAPI``.

Every test talks to the simulator over HTTP with ``XenAPI.Session``.
``raw`` calls an XML-RPC method through the same Session object but returns
xapi's envelope untouched, for the wire-level facts (string ints, error
params, SESSION_INVALID) that ``session.xenapi`` would hide or retry.
"""

import time

import pytest
import XenAPI

USER = "root"
PASSWORD = "sim-secret"


def connect(host, path="/"):
    """An unauthenticated XenAPI.Session to ``host`` (a sim.hosts entry)."""
    base = "http://%s:%s" % (host["address"], host["url"].rsplit(":", 1)[1]
                             .rstrip("/"))
    return XenAPI.Session(base + path if path else base)


def login(host, username=USER, password=PASSWORD):
    session = connect(host)
    session.xenapi.login_with_password(username, password, "2.21",
                                       "poolmgr-tests")
    return session


def raw(session, method, *params):
    """The raw xapi envelope of ``method`` (no XenAPI retry or parsing)."""
    return getattr(session, method)(*params)


def fails(call, *args):
    """The ErrorDescription of a call that must fail with XenAPI.Failure."""
    with pytest.raises(XenAPI.Failure) as info:
        call(*args)
    return info.value.details


def wait_for(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.1fs" % timeout)
        time.sleep(interval)


def join(sim, joiner, master, force=False):
    """pool.join ``joiner`` (a sim.hosts entry) to ``master``; wait until
    the master lists it live."""
    session = login(joiner)
    pool = session.xenapi.pool
    call = pool.join_force if force else pool.join
    call(master["address"], USER, PASSWORD)
    master_session = login(master)

    def live():
        for ref, rec in master_session.xenapi.host.get_all_records().items():
            if rec["uuid"] == joiner["uuid"]:
                metrics = master_session.xenapi.host_metrics.get_record(
                    rec["metrics"])
                return metrics["live"] and sim.role(joiner["name_label"]) \
                    == "slave"
        return False
    wait_for(live)
    return master_session
