"""The planner with compute VMs (issue 12), on plain data."""

from poolmgr.plan import computevm
from poolmgr.plan import planner
from tests.unit import engine_builders as b


def _desired(hosts):
    return planner.Desired(aggregate_id=1, name="pool-a", hosts=tuple(hosts),
                           managed=True)


def _kinds(steps):
    return [(s.kind, s.host) for s in steps]


def _pool_with_joiner(vm_state="Running", stopped=False, extra_vm=None):
    """h1 master (active), h2 standalone with its compute VM."""
    master = b.PoolBuilder("pool-a")
    master.add_host("h1", address="10.0.0.1")
    observed = b.observed_pool(master, ["h1"])
    joiner = b.standalone("h2", address="10.0.0.2")
    me = joiner.pool["master"]
    ref = joiner.add_vm("nova-compute-h2", on=me if vm_state == "Running"
                        else "OpaqueRef:NULL", power_state=vm_state,
                        affinity=me)
    if extra_vm:
        joiner.add_vm(extra_vm, on=me)
    b.add_standalone(observed, joiner)
    view = observed.hosts["h2"]
    view.compute_vm = joiner.vms[ref]["uuid"]
    view.compute_vm_stopped = stopped
    return observed, view


def _plan(observed, members=None):
    return planner.plan_pool_changes(_desired(["h1", "h2"]), observed,
                                     members or {"h1": {"state": "active"}})


def test_running_compute_vm_is_stopped_then_the_host_joins_and_it_starts():
    observed, _ = _pool_with_joiner()
    assert _kinds(_plan(observed)) == [
        ("preflight", "h2"), ("stop_compute_vm", "h2"),
        ("join_compute_host", "h2"), ("wait_member", "h2"),
        ("start_compute_vm", "h2")]


def test_halted_compute_vm_poolmgr_stopped_joins_without_a_new_shutdown():
    observed, _ = _pool_with_joiner("Halted", stopped=True)
    assert _kinds(_plan(observed)) == [
        ("preflight", "h2"), ("join_compute_host", "h2"),
        ("wait_member", "h2"), ("start_compute_vm", "h2")]


def test_compute_vm_an_operator_shut_down_is_never_started():
    observed, _ = _pool_with_joiner("Halted", stopped=False)
    kinds = _kinds(_plan(observed))
    assert kinds == [("preflight", "h2"), ("join", "h2"),
                     ("wait_member", "h2")]


def test_another_running_vm_refuses_and_the_compute_vm_is_left_running():
    observed, _ = _pool_with_joiner(extra_vm="web-1")
    steps = _plan(observed)
    assert _kinds(steps) == [("preflight", "h2")]
    assert steps[0].failures[0].params == ("web-1",)


def test_refused_join_starts_a_compute_vm_poolmgr_had_stopped():
    observed, _ = _pool_with_joiner("Halted", stopped=True, extra_vm="web-1")
    steps = _plan(observed)
    assert _kinds(steps) == [("start_compute_vm", "h2"), ("preflight", "h2")]
    assert steps[0].params["where"] == "standalone"


def _member_with_compute_vm(vm_state, stopped, live=True):
    builder = b.PoolBuilder("pool-a")
    builder.add_host("h1", address="10.0.0.1")
    h2 = builder.add_host("h2", address="10.0.0.2", live=live)
    vm = builder.add_vm("nova-compute-h2", on=h2 if vm_state == "Running"
                        else "OpaqueRef:NULL", power_state=vm_state)
    observed = b.observed_pool(builder, ["h1", "h2"])
    observed.hosts["h2"].compute_vm = builder.vms[vm]["uuid"]
    observed.hosts["h2"].compute_vm_stopped = stopped
    return observed, h2


def test_joined_member_with_its_compute_vm_halted_gets_it_started_there():
    observed, h2 = _member_with_compute_vm("Halted", stopped=True)
    steps = _plan(observed, {"h1": {"state": "active"},
                             "h2": {"state": "joining"}})
    assert _kinds(steps) == [("start_compute_vm", "h2"), ("mark_active", "h2")]
    assert steps[0].params["host_ref"] == h2
    assert steps[0].params["where"] == "pool"


def test_member_not_live_yet_is_waited_for_before_the_start():
    observed, _ = _member_with_compute_vm("Halted", stopped=True, live=False)
    steps = _plan(observed, {"h1": {"state": "active"},
                             "h2": {"state": "joining"}})
    assert _kinds(steps) == [("wait_member", "h2")]


def test_running_again_with_the_mark_set_only_clears_the_mark():
    observed, _ = _member_with_compute_vm("Running", stopped=True)
    steps = _plan(observed, {"h1": {"state": "active"},
                             "h2": {"state": "joining"}})
    assert _kinds(steps) == [("compute_vm_running", "h2"),
                             ("mark_active", "h2")]


def test_halted_member_compute_vm_not_stopped_by_poolmgr_stays_halted():
    observed, _ = _member_with_compute_vm("Halted", stopped=False)
    steps = _plan(observed, {"h1": {"state": "active"},
                             "h2": {"state": "active"}})
    assert steps == []


def _leaving(mode, extra=None):
    observed, h2 = _member_with_compute_vm("Running", stopped=False)
    if extra:
        vm = {"uuid": "x", "name_label": extra, "power_state": "Running",
              "resident_on": h2, "is_control_domain": False}
        observed.pool.vms["OpaqueRef:extra"] = vm
    observed.eject_compute_vm = mode
    return planner.plan_pool_changes(
        _desired(["h1"]), observed,
        {"h1": {"state": "active"}, "h2": {"state": "active"}})


def test_eject_of_a_host_with_a_compute_vm_is_refused_by_default():
    steps = _leaving(computevm.EJECT_REFUSE)
    assert _kinds(steps) == [("refuse_eject_compute_vm", "h2")]
    assert "nova-compute-h2" in steps[0].reason
    assert "eject_compute_vm = shutdown" in steps[0].reason


def test_eject_with_shutdown_stops_the_vm_and_ejects():
    steps = _leaving(computevm.EJECT_SHUTDOWN)
    assert _kinds(steps) == [("eject_compute_host", "h2"),
                             ("wait_standalone", "h2")]
    assert steps[0].params["running"] is True


def test_eject_with_shutdown_still_refuses_other_resident_vms():
    steps = _leaving(computevm.EJECT_SHUTDOWN, extra="web-1")
    assert _kinds(steps) == [("refuse_eject", "h2")]
    assert steps[0].params["vms"] == ["web-1"]


def test_hand_over_then_old_master_with_compute_vm_is_refused():
    builder = b.PoolBuilder("pool-a")
    h1 = builder.add_host("h1", address="10.0.0.1")
    builder.add_host("h2", address="10.0.0.2")
    vm = builder.add_vm("nova-compute-h1", on=h1)
    observed = b.observed_pool(builder, ["h1", "h2"])
    observed.hosts["h1"].compute_vm = builder.vms[vm]["uuid"]
    steps = planner.plan_pool_changes(
        _desired(["h2"]), observed,
        {"h1": {"state": "active"}, "h2": {"state": "active"}})
    assert _kinds(steps) == [("designate_master", "h2"),
                             ("refuse_eject_compute_vm", "h1")]


def test_every_compute_vm_step_describes_itself():
    observed, _ = _pool_with_joiner()
    for step in _plan(observed):
        assert step.describe("h1")
        if step.kind in planner.COMPUTE_VM_KINDS:
            assert "nova-compute-h2" in step.describe("h1")


def test_member_in_error_after_a_refused_start_is_left_for_retry():
    observed, _ = _member_with_compute_vm("Halted", stopped=True)
    steps = _plan(observed, {"h1": {"state": "active"},
                             "h2": {"state": "error"}})
    assert steps == []


def test_killed_between_the_mark_and_the_shutdown_shuts_down_again():
    observed, _ = _pool_with_joiner("Running", stopped=True)
    assert _kinds(_plan(observed))[:3] == [
        ("preflight", "h2"), ("stop_compute_vm", "h2"),
        ("join_compute_host", "h2")]


def _leaving_halted(mode):
    observed, _ = _member_with_compute_vm("Halted", stopped=False)
    observed.eject_compute_vm = mode
    return planner.plan_pool_changes(
        _desired(["h1"]), observed,
        {"h1": {"state": "active"}, "h2": {"state": "active"}})


def test_killed_between_the_eject_shutdown_and_the_eject_ejects_once():
    steps = _leaving_halted(computevm.EJECT_SHUTDOWN)
    assert _kinds(steps) == [("eject_compute_host", "h2"),
                             ("wait_standalone", "h2")]
    assert steps[0].params["running"] is False


def test_a_halted_compute_vm_still_refuses_the_eject_by_default():
    steps = _leaving_halted(computevm.EJECT_REFUSE)
    assert _kinds(steps) == [("refuse_eject_compute_vm", "h2")]
