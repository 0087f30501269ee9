"""A lost master's decisions and words (poolmgr.plan.failover)."""

from poolmgr.plan import planner
from poolmgr.plan import failover as policy


def _record(**extra):
    record = {"master": "h1", "address": "10.0.0.1", "uuid": "u-1",
              "since": "2026-12-04T10:00:00", "answering": ["h2", "h3"],
              "silent": [], "resident_vms": ["web-1"]}
    record.update(extra)
    return record


def test_a_master_silent_for_less_than_the_threshold_is_not_lost_yet():
    assert policy.decide(_record(), None, policy.FENCED, False, 1.9,
                         2.0) == policy.GRACE


def test_manual_policy_asks_a_person_and_never_promotes_by_itself():
    assert policy.decide(_record(), None, policy.MANUAL, False, 90,
                         60) == policy.ASK


def test_a_confirmed_request_promotes_under_either_policy():
    request = {"host": None, "at": "t"}
    for mode in (policy.MANUAL, policy.FENCED):
        assert policy.decide(_record(), request, mode, False, 90,
                             60) == policy.PROMOTE


def test_ha_enabled_leaves_it_to_ha_even_when_a_person_asks():
    assert policy.decide(_record(fence={"fenced": True}), {"host": None},
                         policy.FENCED, True, 90, 60) == policy.LEAVE_TO_HA


def test_fenced_policy_fences_first_and_promotes_only_after_exit_zero():
    assert policy.decide(_record(), None, policy.FENCED, False, 90,
                         60) == policy.FENCE
    assert policy.decide(_record(fence={"fenced": False}), None,
                         policy.FENCED, False, 90, 60) == policy.FENCE
    assert policy.decide(_record(fence={"fenced": True}), None,
                         policy.FENCED, False, 90, 60) == policy.PROMOTE


def test_the_successor_is_the_first_answering_host_in_aggregate_order():
    assert policy.successor(("h1", "h2", "h3"), ["h3", "h2"], "h1") == "h2"
    assert policy.successor(("h1", "h2", "h3"), ["h3"], "h1") == "h3"
    assert policy.successor(("h1", "h2"), [], "h1") is None


def test_a_requested_successor_must_answer():
    assert policy.successor(("h1", "h2", "h3"), ["h2", "h3"], "h1",
                            requested="h3") == "h3"
    assert policy.successor(("h1", "h2", "h3"), ["h2"], "h1",
                            requested="h3") is None


def test_master_lost_reasons_name_the_master_members_vms_and_the_way():
    reasons = policy.lost_reasons(_record(silent=["h4"]), 7, policy.ASK)
    text = " | ".join(reasons)
    assert "pool master h1 (10.0.0.1, uuid u-1) does not answer since " \
        "2026-12-04T10:00:00" in text
    assert "members answering (slave-local login): h2, h3; not " \
        "answering: h4" in text
    assert "web-1" in text and "never resets their power state" in text
    assert "poolmgr-manage pool promote 7 [--host HOST] " \
        "--confirm-master-fenced" in text


def test_a_failed_fence_is_said_with_its_outcome():
    record = _record(fence={"fenced": False,
                            "outcome": "fence_command exited 3: no BMC"})
    text = " | ".join(policy.lost_reasons(record, 7, policy.FENCE))
    assert "fence_command exited 3: no BMC; no promotion" in text


def test_ha_reason_says_ha_elects_the_master():
    text = " | ".join(policy.lost_reasons(_record(), 7, policy.LEAVE_TO_HA))
    assert "xapi HA is enabled on this pool (HA_IS_ENABLED)" in text


def test_after_a_promotion_the_fenced_master_and_stragglers_are_blocked():
    record = _record(successor="h2", successor_address="10.0.0.2",
                     promoted_at="t2", authority="a person",
                     stragglers={"h4": "it does not answer: refused"})
    members = {"h1": {"state": planner.MEMBER_FENCED},
               "h2": {"state": "active"}, "h4": {"state": "active"}}
    steps = policy.fenced_steps(record, members, 7)
    assert [(s.kind, s.host) for s in steps] == [
        (planner.BLOCKED, "h1"), (planner.BLOCKED, "h4")]
    assert "not trusted as master" in steps[0].reason
    assert "poolmgr-manage pool retry 7 h1" in steps[0].reason
    assert "master-address=10.0.0.2" in steps[1].reason


def test_a_retried_old_master_is_no_longer_blocked():
    record = _record(successor="h2", promoted_at="t2")
    assert policy.fenced_steps(record, {"h1": {"state": "pending"}}, 7) == []


def test_a_fenced_member_is_never_a_master_candidate():
    desired = planner.Desired(1, "p", ("h1", "h2"), True)
    members = {"h1": {"state": planner.MEMBER_FENCED},
               "h2": {"state": "active"}}
    assert planner.master_candidates(desired, "h2", members) == ["h2"]
