"""The compute VM (issue 12) in the pure rooms: preflight's expectation and
the ``--compute-vm auto`` rule."""

import pytest

from poolmgr.plan import preflight
from poolmgr.xenapi import compute_vm
from tests.unit import engine_builders as b


def _pair():
    return (b.standalone("h2", address="10.0.0.2"),
            b.standalone("h1", address="10.0.0.1"))


def _uuid(builder, ref):
    return builder.vms[ref]["uuid"]


def test_running_compute_vm_is_expected_on_the_joiner():
    joiner, master = _pair()
    ref = joiner.add_vm("nova-compute-h2", on=joiner.pool["master"])
    assert preflight.check_join(joiner.snapshot(), master.snapshot(),
                                compute_vm_uuid=_uuid(joiner, ref)) == []


def test_other_running_vms_still_refuse_the_join_and_are_listed():
    joiner, master = _pair()
    me = joiner.pool["master"]
    ref = joiner.add_vm("nova-compute-h2", on=me)
    joiner.add_vm("web-2", on=me)
    joiner.add_vm("web-1", on=me)
    failures = preflight.check_join(joiner.snapshot(), master.snapshot(),
                                    compute_vm_uuid=_uuid(joiner, ref))
    assert [f.code for f in failures] == [
        "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]
    assert failures[0].params == ("web-1", "web-2")


def test_without_a_registered_compute_vm_it_refuses_like_any_guest():
    joiner, master = _pair()
    joiner.add_vm("nova-compute-h2", on=joiner.pool["master"])
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert failures[0].params == ("nova-compute-h2",)


def _host(builder):
    snap = builder.snapshot()
    return snap, snap.master_ref


def test_auto_picks_the_vm_named_nova_compute_of_the_host():
    joiner, _ = _pair()
    me = joiner.pool["master"]
    ref = joiner.add_vm("nova-compute-compute2", on=me)
    joiner.add_vm("web-1", on=me)
    snap, me = _host(joiner)
    assert compute_vm.choose(snap.vms, snap.hosts, me, "compute2") == \
        _uuid(joiner, ref)


def test_auto_picks_a_vm_named_like_the_xenserver_host():
    joiner, _ = _pair()
    me = joiner.pool["master"]
    ref = joiner.add_vm("nova-compute-h2", on=me, power_state="Halted",
                        resident_on="OpaqueRef:NULL", affinity=me)
    joiner.add_vm("web-1", on=me)
    snap, me = _host(joiner)
    assert compute_vm.choose(snap.vms, snap.hosts, me, "compute2") == \
        _uuid(joiner, ref)


def test_auto_falls_back_to_the_only_running_guest():
    joiner, _ = _pair()
    me = joiner.pool["master"]
    ref = joiner.add_vm("ncpu", on=me)
    joiner.add_vm("old", on=me, power_state="Halted")
    joiner.add_vm("Control domain", on=me, is_control_domain=True)
    snap, me = _host(joiner)
    assert compute_vm.choose(snap.vms, snap.hosts, me, "compute2") == \
        _uuid(joiner, ref)


def test_auto_with_two_running_guests_fails_listing_both():
    joiner, _ = _pair()
    me = joiner.pool["master"]
    a = joiner.add_vm("a", on=me)
    c = joiner.add_vm("c", on=me)
    snap, me = _host(joiner)
    with pytest.raises(compute_vm.NoSingleCandidate) as info:
        compute_vm.choose(snap.vms, snap.hosts, me, "compute2")
    assert info.value.candidates == sorted(
        ["%s (a, Running)" % _uuid(joiner, a),
         "%s (c, Running)" % _uuid(joiner, c)])


def test_auto_ignores_vms_on_other_hosts():
    joiner, _ = _pair()
    joiner.add_vm("nova-compute-compute2", on="OpaqueRef:elsewhere")
    snap, me = _host(joiner)
    with pytest.raises(compute_vm.NoSingleCandidate) as info:
        compute_vm.choose(snap.vms, snap.hosts, me, "compute2")
    assert info.value.candidates == []
