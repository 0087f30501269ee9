"""plan_pool_changes on plain data: the engine's decisions, one per test."""

from poolmgr.plan import planner
from tests.unit import engine_builders as b


def _desired(hosts, name="pool-a", managed=True):
    return planner.Desired(aggregate_id=1, name=name, hosts=tuple(hosts),
                           managed=managed)


def _kinds(steps):
    return [(s.kind, s.host) for s in steps]


def _pool(names, name_label="pool-a", sr=True):
    builder = b.PoolBuilder(name_label)
    refs = [builder.add_host(n, address="10.0.0.%d" % (i + 1))
            for i, n in enumerate(names)]
    if sr:
        builder.add_sr("nfs", on=refs)
    return builder, refs


def _active(*names):
    return {n: {"state": "active"} for n in names}


def test_first_host_forms_the_pool_by_renaming_it():
    builder, _ = _pool(["h1"], name_label="")
    steps = planner.plan_pool_changes(
        _desired(["h1"]), b.observed_pool(builder, ["h1"]), {})
    assert _kinds(steps) == [("set_name_label", "h1"), ("mark_active", "h1")]
    assert steps[0].params["name"] == "pool-a"


def test_converged_pool_has_nothing_to_do():
    builder, _ = _pool(["h1", "h2"])
    steps = planner.plan_pool_changes(
        _desired(["h1", "h2"]), b.observed_pool(builder, ["h1", "h2"]),
        _active("h1", "h2"))
    assert steps == [] and planner.is_converged(steps)


def test_rename_keeps_pool_name_in_sync():
    builder, _ = _pool(["h1"], name_label="old")
    steps = planner.plan_pool_changes(
        _desired(["h1"], name="new"), b.observed_pool(builder, ["h1"]),
        _active("h1"))
    assert _kinds(steps) == [("set_name_label", "h1")]


def test_new_hosts_join_in_aggregate_order_each_after_preflight():
    builder, _ = _pool(["h1"])
    observed = b.observed_pool(builder, ["h1"])
    b.add_standalone(observed, b.standalone("h2", address="10.0.0.2"))
    b.add_standalone(observed, b.standalone("h3", address="10.0.0.3"))
    steps = planner.plan_pool_changes(_desired(["h1", "h3", "h2"]), observed,
                                      _active("h1"))
    assert _kinds(steps) == [
        ("preflight", "h3"), ("join", "h3"), ("wait_member", "h3"),
        ("preflight", "h2"), ("join", "h2"), ("wait_member", "h2")]
    join = steps[1]
    assert join.mutating and join.params["master_address"] == "10.0.0.1"
    assert join.params["force"] is False


def test_join_force_when_configured():
    builder, _ = _pool(["h1"])
    observed = b.add_standalone(b.observed_pool(builder, ["h1"]),
                                b.standalone("h2"))
    steps = planner.plan_pool_changes(_desired(["h1", "h2"]), observed,
                                      _active("h1"), force=True)
    assert steps[1].kind == "join" and steps[1].params["force"] is True
    assert "pool.join_force" in steps[1].describe()


def test_host_failing_preflight_is_refused_without_join_others_proceed():
    builder, _ = _pool(["h1"])
    observed = b.observed_pool(builder, ["h1"])
    busy = b.standalone("h2")
    busy.add_vm("web-1", on=busy.pool["master"])
    b.add_standalone(observed, busy)
    b.add_standalone(observed, b.standalone("h3"))
    steps = planner.plan_pool_changes(_desired(["h1", "h2", "h3"]), observed,
                                      _active("h1"))
    assert _kinds(steps) == [("preflight", "h2"), ("preflight", "h3"),
                             ("join", "h3"), ("wait_member", "h3")]
    assert [f.code for f in steps[0].failures] == [
        "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]


def test_member_parked_in_error_is_left_alone():
    builder, _ = _pool(["h1"])
    observed = b.add_standalone(b.observed_pool(builder, ["h1"]),
                                b.standalone("h2"))
    members = dict(_active("h1"), h2={"state": "error",
                                      "error_code": "HOSTS_NOT_HOMOGENEOUS"})
    steps = planner.plan_pool_changes(_desired(["h1", "h2"]), observed,
                                      members)
    assert steps == []


def test_slave_removed_from_aggregate_is_ejected_on_the_master():
    builder, refs = _pool(["h1", "h2", "h3"])
    steps = planner.plan_pool_changes(
        _desired(["h1", "h3"]), b.observed_pool(builder, ["h1", "h2", "h3"]),
        _active("h1", "h2", "h3"))
    assert _kinds(steps) == [("eject", "h2"), ("wait_standalone", "h2")]
    assert steps[0].params["host_ref"] == refs[1]
    assert steps[0].params["master"] == "h1"


def test_eject_refused_when_vms_resident_and_names_them():
    builder, refs = _pool(["h1", "h2"])
    builder.add_vm("db-1", on=refs[1])
    builder.add_vm("stopped", on=refs[1], power_state="Halted")
    steps = planner.plan_pool_changes(
        _desired(["h1"]), b.observed_pool(builder, ["h1", "h2"]),
        _active("h1", "h2"))
    assert _kinds(steps) == [("refuse_eject", "h2")]
    assert steps[0].params["vms"] == ["db-1"]


def test_master_removed_hands_over_then_is_ejected():
    builder, refs = _pool(["h1", "h2", "h3"])
    steps = planner.plan_pool_changes(
        _desired(["h2", "h3"]), b.observed_pool(builder, ["h1", "h2", "h3"]),
        _active("h1", "h2", "h3"))
    assert _kinds(steps) == [("designate_master", "h2"), ("eject", "h1"),
                             ("wait_standalone", "h1")]
    assert steps[0].params["host_ref"] == refs[1]
    assert steps[1].params["master"] == "h2"


def test_b3_master_removed_from_two_host_pool_hands_over_not_cleared():
    # Nova (B3) saw one host left after the API's delete and cleared the
    # pool; the planner looks at the pool itself.
    builder, _ = _pool(["h1", "h2"])
    steps = planner.plan_pool_changes(
        _desired(["h2"]), b.observed_pool(builder, ["h1", "h2"]),
        _active("h1", "h2"))
    assert _kinds(steps)[:2] == [("designate_master", "h2"), ("eject", "h1")]


def test_sole_master_removed_is_released_with_name_cleared():
    builder, _ = _pool(["h1"])
    steps = planner.plan_pool_changes(
        _desired([]), b.observed_pool(builder, ["h1"]), _active("h1"))
    assert _kinds(steps) == [("release_master", "h1")]


def test_flag_removed_clears_name_of_single_host_pool_and_dismisses():
    builder, _ = _pool(["h1"])
    steps = planner.plan_pool_changes(
        _desired(["h1"], managed=False), b.observed_pool(builder, ["h1"]),
        _active("h1"))
    assert _kinds(steps) == [("clear_name", "h1"), ("dismiss", None)]
    assert planner.is_converged(steps[1:])


def test_flag_removed_never_ejects_members():
    builder, _ = _pool(["h1", "h2"])
    steps = planner.plan_pool_changes(
        _desired(["h1", "h2"], managed=False),
        b.observed_pool(builder, ["h1", "h2"]), _active("h1", "h2"))
    assert _kinds(steps) == [("dismiss", None)]


def test_unplugged_pbd_is_plugged_and_missing_pbd_created():
    builder, refs = _pool(["h1", "h2", "h3"])
    sr_ref = next(iter(builder.srs))
    snap = builder.snapshot()
    unplugged, _ = snap.pbd_for(refs[1], sr_ref)
    builder.pbds[unplugged]["currently_attached"] = False
    missing, _ = snap.pbd_for(refs[2], sr_ref)
    del builder.pbds[missing]
    steps = planner.plan_pool_changes(
        _desired(["h1", "h2", "h3"]),
        b.observed_pool(builder, ["h1", "h2", "h3"]),
        _active("h1", "h2", "h3"))
    assert _kinds(steps) == [("plug_pbd", "h2"), ("create_pbd", "h3")]
    assert steps[1].params["device_config"] == {"server": "nfs.example",
                                                "serverpath": "/vms"}


def test_joined_host_not_live_yet_is_waited_for_then_marked_active():
    builder, refs = _pool(["h1", "h2"])
    builder.metrics[builder.hosts[refs[1]]["metrics"]]["live"] = False
    members = dict(_active("h1"), h2={"state": "joining"})
    steps = planner.plan_pool_changes(_desired(["h1", "h2"]),
                                      b.observed_pool(builder, ["h1", "h2"]),
                                      members)
    assert _kinds(steps) == [("wait_member", "h2")]
    builder.metrics[builder.hosts[refs[1]]["metrics"]]["live"] = True
    steps = planner.plan_pool_changes(_desired(["h1", "h2"]),
                                      b.observed_pool(builder, ["h1", "h2"]),
                                      members)
    assert _kinds(steps) == [("mark_active", "h2")]


def test_active_member_gone_offline_is_not_waited_for():
    builder, refs = _pool(["h1", "h2"])
    builder.metrics[builder.hosts[refs[1]]["metrics"]]["live"] = False
    steps = planner.plan_pool_changes(_desired(["h1", "h2"]),
                                      b.observed_pool(builder, ["h1", "h2"]),
                                      _active("h1", "h2"))
    assert steps == []


def test_unreachable_unregistered_and_foreign_hosts_block_with_reasons():
    builder, _ = _pool(["h1"])
    observed = b.observed_pool(builder, ["h1"])
    observed.hosts["h2"] = planner.HostView("h2", planner.UNREACHABLE,
                                            detail="CONNECTION_FAILED")
    observed.hosts["h3"] = planner.HostView("h3", planner.UNREGISTERED)
    observed.hosts["h4"] = planner.HostView("h4", planner.OTHER_POOL,
                                            detail="10.9.9.9")
    steps = planner.plan_pool_changes(_desired(["h1", "h2", "h3", "h4"]),
                                      observed, _active("h1"))
    assert _kinds(steps) == [("blocked", "h2"), ("blocked", "h3"),
                             ("blocked", "h4")]
    assert "host register h3" in steps[1].reason
    assert "10.9.9.9" in steps[2].reason
    assert not planner.is_converged(steps)


def test_host_removed_before_joining_is_marked_removed():
    builder, _ = _pool(["h1"])
    members = dict(_active("h1"), h2={"state": "error"})
    steps = planner.plan_pool_changes(_desired(["h1"]),
                                      b.observed_pool(builder, ["h1"]),
                                      members)
    assert _kinds(steps) == [("mark_removed", "h2")]


def test_unregistered_pool_member_is_reported_not_ejected():
    builder, refs = _pool(["h1", "stray"])
    observed = b.observed_pool(builder, ["h1"])
    observed.unknown_members = [refs[1]]
    steps = planner.plan_pool_changes(_desired(["h1"]), observed,
                                      _active("h1"))
    assert _kinds(steps) == [("blocked", None)]
    assert "stray" in steps[0].reason


def test_master_candidates_prefer_recorded_master_then_aggregate_order():
    desired = _desired(["h1", "h2", "h3"])
    members = {"h1": {"state": "error"}, "h3": {"state": "active"}}
    assert planner.master_candidates(desired, "h9", members) == [
        "h9", "h3", "h2"]
    assert planner.master_candidates(desired, None, {}) == ["h1", "h2", "h3"]


def test_no_pool_yet_and_nothing_reachable_is_blocked():
    observed = planner.Observed(hosts={
        "h1": planner.HostView("h1", planner.UNREACHABLE, detail="refused")})
    steps = planner.plan_pool_changes(_desired(["h1"]), observed, {})
    assert _kinds(steps) == [("blocked", "h1")]


SECRET = "S3cr3t-in-the-input"


def test_every_step_describes_itself_without_secrets():
    # Secrets where the planner's input holds them: a CIFS SR's
    # device_config (copied into PBD.create) and credentials in host URLs.
    builder = b.PoolBuilder("x")
    refs = [builder.add_host(n, address="10.0.0.%d" % (i + 1))
            for i, n in enumerate(["h1", "h2", "h3"])]
    sr_ref = builder.add_sr("cifs", type_="cifs", on=refs, device_config={
        "server": "//files/vms", "username": "svc", "password": SECRET})
    missing, _ = builder.snapshot().pbd_for(refs[2], sr_ref)
    del builder.pbds[missing]
    observed = b.add_standalone(b.observed_pool(builder, ["h1", "h2", "h3"]),
                                b.standalone("h4", address="10.0.0.4"))
    for view in observed.hosts.values():
        view.url = view.url.replace("http://", "http://root:%s@" % SECRET)
    steps = planner.plan_pool_changes(_desired(["h2", "h3", "h4"]), observed,
                                      _active("h1", "h2", "h3"))
    kinds = {s.kind for s in steps}
    assert {"set_name_label", "designate_master", "eject", "create_pbd",
            "preflight", "join"} <= kinds
    create = [s for s in steps if s.kind == "create_pbd"][0]
    assert create.params["device_config"]["password"] == SECRET
    texts = [s.describe() for s in steps] + [s.reason or "" for s in steps]
    assert texts[0].startswith("pool.set_name_label(")
    assert any(t.startswith("pool.designate_new_master(h2)") for t in texts)
    assert any(t.startswith("pool.join(10.0.0.1") for t in texts)
    assert any(t.startswith("PBD.create(host=h3, SR=cifs") for t in texts)
    assert all(SECRET not in t for t in texts), texts
