"""Live-migration readiness: shared SR x member matrix (xapi.md §6)."""

from poolmgr.plan import readiness
from tests.unit import engine_builders as b


def _pool(n=3, sr=True, attached=True):
    builder = b.PoolBuilder("pool-a")
    refs = [builder.add_host("h%d" % i) for i in range(1, n + 1)]
    if sr:
        builder.add_sr("nfs", on=refs, attached=attached,
                       device_config={"server": "nfs", "serverpath": "/x",
                                      "SRmaster": "true"})
    return builder, refs


def test_ready_when_every_member_live_and_every_shared_sr_attached():
    builder, _ = _pool()
    result = readiness.assess(builder.snapshot())
    assert result.ready and result.reasons == []
    assert result.matrix[0]["hosts"] == {"h1": "attached", "h2": "attached",
                                         "h3": "attached"}


def test_no_shared_sr_is_not_ready():
    builder, refs = _pool(sr=False)
    builder.add_sr("iso", shared=True, on=refs, type_="iso",
                   content_type="iso")
    builder.add_sr("local", shared=False, on=refs[:1], type_="ext")
    result = readiness.assess(builder.snapshot())
    assert not result.ready
    assert result.reasons == ["no shared SR (other than ISO) in the pool"]


def test_unplugged_pbd_is_a_reason_and_a_plug_repair():
    builder, refs = _pool()
    pbd_ref, _ = builder.snapshot().pbd_for(refs[2], next(iter(builder.srs)))
    builder.pbds[pbd_ref]["currently_attached"] = False
    result = readiness.assess(builder.snapshot())
    assert not result.ready
    assert result.reasons == ["shared SR nfs is not plugged on h3"]
    assert result.matrix[0]["hosts"]["h3"] == "unplugged"
    assert [(r.kind, r.host_ref, r.pbd_ref) for r in result.repairs] == [
        ("plug_pbd", refs[2], pbd_ref)]


def test_missing_pbd_is_created_from_a_member_device_config_without_srmaster():
    builder, refs = _pool()
    pbd_ref, _ = builder.snapshot().pbd_for(refs[1], next(iter(builder.srs)))
    del builder.pbds[pbd_ref]
    result = readiness.assess(builder.snapshot())
    assert result.matrix[0]["hosts"]["h2"] == "missing"
    [repair] = result.repairs
    assert repair.kind == "create_pbd" and repair.host_ref == refs[1]
    assert repair.device_config == {"server": "nfs", "serverpath": "/x"}


def test_member_not_live_or_disabled_is_a_reason():
    builder, refs = _pool()
    builder.metrics[builder.hosts[refs[1]]["metrics"]]["live"] = False
    builder.hosts[refs[2]]["enabled"] = False
    result = readiness.assess(builder.snapshot())
    assert result.reasons == ["h2 is not live", "h3 is disabled"]


def test_names_map_refs_to_compute_hosts_and_expected_members_count():
    builder, refs = _pool(n=2)
    result = readiness.assess(builder.snapshot(),
                              names={refs[0]: "cmp-1", refs[1]: "cmp-2"},
                              expected=["cmp-3"])
    assert not result.ready
    assert result.reasons == ["cmp-3 is not a member of the pool yet"]
    assert set(result.matrix[0]["hosts"]) == {"cmp-1", "cmp-2"}


def test_member_complete_needs_live_enabled_and_attached():
    builder, refs = _pool(n=2)
    assert readiness.member_complete(builder.snapshot(), refs[1])
    pbd_ref, _ = builder.snapshot().pbd_for(refs[1], next(iter(builder.srs)))
    builder.pbds[pbd_ref]["currently_attached"] = False
    assert not readiness.member_complete(builder.snapshot(), refs[1])


def test_string_booleans_from_xmlrpc_are_understood():
    builder, refs = _pool(n=1)
    builder.metrics[builder.hosts[refs[0]]["metrics"]]["live"] = "true"
    for sr in builder.srs.values():
        sr["shared"] = "true"
    assert readiness.assess(builder.snapshot()).ready
