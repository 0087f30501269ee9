"""poolmgr.plan.proof: the canary proof's record, staleness, words (pure)."""

from poolmgr.plan import proof

MEMBERS = ["uuid-a", "uuid-b", "uuid-c"]


def _proven(**kw):
    record = {"status": proof.PROVEN, "at": "2026-12-04T18:00:00Z",
              "members": list(MEMBERS), "failure": None, "leftover": None,
              "hops": [{"from": "cmp-1", "to": "cmp-2", "seconds": 1.0},
                       {"from": "cmp-2", "to": "cmp-3", "seconds": 3.0}]}
    record.update(kw)
    return record


def _failed(code="VM_REQUIRES_SR", transient=False):
    return _proven(status=proof.FAILED, hops=[], failure={
        "step": "migrate", "from": "cmp-1", "to": "cmp-2", "code": code,
        "params": ["OpaqueRef:vm", "OpaqueRef:sr"], "message": None,
        "transient": transient})


def test_proven_summary_counts_hops_and_gives_the_median():
    hops = [{"from": "a", "to": "b", "seconds": s} for s in (1.0, 6.0, 2.0)]
    assert proof.summary(_proven(hops=hops)) == \
        "proven at 2026-12-04T18:00:00Z (3 hops, p50 2.00 s)"


def test_failed_summary_names_the_hop_and_xapis_code_and_params():
    assert proof.summary(_failed()) == (
        "failed at 2026-12-04T18:00:00Z after 0 hops: cmp-1 -> cmp-2: "
        "VM_REQUIRES_SR OpaqueRef:vm OpaqueRef:sr")


def test_a_proof_of_other_members_is_marked_stale():
    assert proof.summary(_proven(), MEMBERS[:2]).endswith(
        "[stale: the pool's members changed since]")
    assert "stale" not in proof.summary(_proven(), reversed(MEMBERS))


def test_a_current_proof_is_not_redone_proven_or_failed():
    assert not proof.needs_proof(_proven(), MEMBERS)
    assert not proof.needs_proof(_failed(), MEMBERS)
    assert proof.needs_proof(None, MEMBERS)
    assert proof.needs_proof(_proven(), MEMBERS + ["uuid-d"])


def test_a_proof_failed_for_a_moment_is_redone():
    assert proof.needs_proof(_failed("HOST_NOT_LIVE", transient=True),
                             MEMBERS)


def test_a_current_failed_proof_makes_the_pool_not_ready():
    ready, reasons = proof.judge(_failed(), MEMBERS, True, ["r"])
    assert ready is False
    assert reasons[0] == "r" and "VM_REQUIRES_SR" in reasons[1]


def test_a_stale_or_proven_record_leaves_readiness_alone():
    assert proof.judge(_failed(), MEMBERS[:1], True, []) == (True, [])
    assert proof.judge(_proven(), MEMBERS, False, ["x"]) == (False, ["x"])
