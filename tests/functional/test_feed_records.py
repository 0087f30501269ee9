"""A pool's records are kept with the fields poolmgr reads (NOTE(fields)).

The feed (and the get_all_records fallback) keep each record with
records.FIELDS only; what is kept is exactly what xapi sent for those
fields. Every test of the suite runs with records that refuse a read of a
field not kept (tests/conftest.py, strict_records): the last test here
shows that net is on.
"""

import pytest

from poolmgr.xenapi import operations
from poolmgr.xenapi import records
from poolmgr.xenapi import session as xsession


def _session(sim, host=0):
    return xsession.XapiSession(sim.hosts[host]["url"], "root", "sim-secret",
                                timeout=5.0, verify=False)


def _full_tables(sess):
    """The pool's records as xapi sends them (event.from, token "")."""
    return operations.full_batch(sess, keep=records.as_sent)[0]


def _snapshot_tables(snap):
    return {"pool": {snap.pool_ref: snap.pool}, "host": snap.hosts,
            "host_metrics": snap.host_metrics, "sr": snap.srs,
            "pbd": snap.pbds, "vm": snap.vms}


def _assert_kept(snap, full):
    dropped = 0
    for cls, table in _snapshot_tables(snap).items():
        assert set(table) == set(full[cls]), cls
        for ref, kept in table.items():
            sent = full[cls][ref]
            assert dict(kept) == {k: v for k, v in sent.items()
                                  if k in records.FIELDS[cls]}, (cls, ref)
            dropped += len(sent) - len(kept)
    # The simulator sends more than poolmgr reads, so something was left.
    assert dropped > 0


def test_a_feed_keeps_only_the_fields_poolmgr_reads(simulator):
    sim = simulator(hosts=2)
    name = sim.hosts[0]["name_label"]
    sim.create_shared_sr(name, "nfs-a")
    sim.create_running_vm(name, "guest-1")
    sess = _session(sim)
    feed = operations.PoolFeed()
    _assert_kept(feed.read(sess), _full_tables(sess))
    assert feed.full_reads == 1

    # A delta keeps its records the same way.
    sim.create_running_vm(name, "guest-2")
    snap = feed.read(sess)
    assert feed.delta_reads == 1
    assert sorted(vm["name_label"] for vm in snap.vms.values()
                  if not vm["is_control_domain"]) == ["guest-1", "guest-2"]
    _assert_kept(snap, _full_tables(sess))


def test_the_get_all_records_fallback_keeps_them_too(simulator):
    sim = simulator(hosts=1)
    sim.create_shared_sr(sim.hosts[0]["name_label"], "nfs-b")
    sess = _session(sim)
    full = _full_tables(sess)
    sess.event_from_supported = False
    _assert_kept(operations.read_pool(sess), full)


def test_a_snapshot_built_from_records_is_kept_like_a_feed():
    snap = records.PoolSnapshot.from_records(
        {"OpaqueRef:p": {"uuid": "p-1", "master": "OpaqueRef:h",
                         "other_config": {"a": "b"}}},
        {"OpaqueRef:h": {"uuid": "h-1", "edition": "enterprise",
                         "logging": {}, "bios_strings": {"x": "y"}}},
        vms={"OpaqueRef:v": {"uuid": "v-1", "power_state": "Running",
                             "VCPUs_max": "4"}})
    assert dict(snap.pool) == {"uuid": "p-1", "master": "OpaqueRef:h"}
    assert dict(snap.hosts["OpaqueRef:h"]) == {"uuid": "h-1",
                                               "edition": "enterprise"}
    assert dict(snap.vms["OpaqueRef:v"]) == {"uuid": "v-1",
                                             "power_state": "Running"}


def test_reading_a_field_that_is_not_kept_fails_a_test(simulator):
    sim = simulator(hosts=1)
    snap = operations.read_pool(_session(sim))
    host = snap.master
    assert host.get("software_version")
    with pytest.raises(AssertionError, match="other_config"):
        host.get("other_config")
    with pytest.raises(AssertionError, match="logging"):
        "logging" in host  # noqa: B015 - the read is what is tested
