"""xapi's pool.join checks evaluated on plain data (xapi.md §2.2)."""

from poolmgr.plan import preflight
from tests.unit import engine_builders as b


def _pair(joiner_kwargs=None, master_kwargs=None):
    joiner = b.standalone("h2", address="10.0.0.2", **(joiner_kwargs or {}))
    master = b.standalone("h1", address="10.0.0.1", **(master_kwargs or {}))
    return joiner, master


def _codes(failures):
    return [f.code for f in failures]


def test_identical_hosts_pass():
    joiner, master = _pair()
    assert preflight.check_join(joiner.snapshot(), master.snapshot()) == []


def test_running_vm_fails_with_xapi_code_and_names_the_vm():
    joiner, master = _pair()
    joiner.add_vm("web-1", on=joiner.pool["master"])
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert _codes(failures) == ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]
    assert failures[0].params == ("web-1",)
    assert "retry" in failures[0].remediation


def test_halted_suspended_and_control_domain_vms_do_not_block_join():
    joiner, master = _pair()
    me = joiner.pool["master"]
    joiner.add_vm("old", on=me, power_state="Halted")
    joiner.add_vm("sleepy", on=me, power_state="Suspended")
    joiner.add_vm("Control domain", on=me, is_control_domain=True)
    joiner.add_vm("tmpl", on=me, is_a_template=True, power_state="Halted")
    assert preflight.check_join(joiner.snapshot(), master.snapshot()) == []


def test_all_failures_reported_at_once_in_xapi_order():
    joiner, master = _pair(joiner_kwargs={"cpu_vendor": "AuthenticAMD"})
    me = joiner.pool["master"]
    joiner.add_vm("web-1", on=me)
    joiner.add_sr("nfs-on-joiner", shared=True, on=[me])
    joiner.pool["ha_enabled"] = True
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert _codes(failures) == [
        "HA_IS_ENABLED", "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS",
        "HOSTS_NOT_HOMOGENEOUS", "JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS"]
    assert all(f.remediation for f in failures)


def test_cpu_vendor_mismatch_is_not_homogeneous():
    joiner, master = _pair(joiner_kwargs={"cpu_vendor": "AuthenticAMD"})
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert [(f.code, f.params) for f in failures] == [
        ("HOSTS_NOT_HOMOGENEOUS", ("CPUs differ",))]


def test_join_force_skips_only_the_homogeneity_check():
    sw = dict(b.SOFTWARE, xapi="99.1")
    joiner, master = _pair(joiner_kwargs={"cpu_vendor": "AuthenticAMD",
                                          "software": sw})
    joiner.add_vm("web-1", on=joiner.pool["master"])
    failures = preflight.check_join(joiner.snapshot(), master.snapshot(),
                                    force=True)
    assert _codes(failures) == ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]


def test_software_version_differs_but_build_number_ignored():
    joiner, master = _pair(joiner_kwargs={
        "software": dict(b.SOFTWARE, build_number="999")})
    assert preflight.check_join(joiner.snapshot(), master.snapshot()) == []
    joiner, master = _pair(joiner_kwargs={
        "software": dict(b.SOFTWARE, git_id="other")})
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert [(f.code, f.params) for f in failures] == [
        ("HOSTS_NOT_HOMOGENEOUS", ("Software version differs",))]


def test_platform_version_differs_is_not_compatible_even_with_force():
    joiner, master = _pair(joiner_kwargs={
        "software": dict(b.SOFTWARE, platform_version="2.1.0")})
    failures = preflight.check_join(joiner.snapshot(), master.snapshot(),
                                    force=True)
    assert _codes(failures) == ["HOSTS_NOT_COMPATIBLE"]


def test_shared_tools_sr_is_exempt():
    joiner, master = _pair()
    joiner.add_sr("XenServer Tools", shared=True, on=[joiner.pool["master"]],
                  type_="iso", content_type="iso", is_tools_sr=True)
    assert preflight.check_join(joiner.snapshot(), master.snapshot()) == []


def test_master_of_other_hosts_cannot_join():
    joiner, master = _pair()
    joiner.add_host("h2-slave")
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert "JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS" in _codes(failures)


def test_joining_itself_is_refused():
    joiner, _ = _pair()
    failures = preflight.check_join(joiner.snapshot(), joiner.snapshot())
    assert [(f.code, f.params) for f in failures] == [
        ("OPERATION_NOT_ALLOWED", ("Host cannot become slave of itself",))]


def test_api_version_and_db_schema_mismatch_carry_both_values():
    joiner, master = _pair(joiner_kwargs={
        "API_version_minor": "20",
        "software": dict(b.SOFTWARE, db_schema="5.700")})
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert [(f.code, f.params) for f in failures] == [
        ("POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION", ("2.20", "2.21")),
        ("POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA", ("5.700", "5.780"))]


def test_ha_on_target_pool_refused():
    joiner, master = _pair()
    master.pool["ha_enabled"] = True
    assert _codes(preflight.check_join(joiner.snapshot(), master.snapshot())) \
        == ["HA_IS_ENABLED"]


def test_licence_restrictions():
    joiner, master = _pair()
    master.add_host("h3")
    master.add_host("h4")
    joiner.pool["restrictions"] = {"restrict_pool_size": "true"}
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert [(f.code, f.params) for f in failures] == [
        ("LICENCE_RESTRICTION", ("Pool_size",))]
    joiner.pool["restrictions"] = {"restrict_pooling": "true"}
    assert [(f.code, f.params) for f in preflight.check_join(
        joiner.snapshot(), master.snapshot())] == [("LICENCE_RESTRICTION", ())]


def test_edition_external_auth_tls_and_network_backend_mismatches():
    joiner, master = _pair(joiner_kwargs={
        "edition": "xenserver-standard", "external_auth_type": "AD",
        "external_auth_service_name": "corp.example",
        "software": dict(b.SOFTWARE, network_backend="bridge")})
    joiner.pool["tls_verification_enabled"] = True
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert _codes(failures) == [
        "POOL_JOINING_EXTERNAL_AUTH_MISMATCH", "LICENSE_HOST_POOL_MISMATCH",
        "OPERATION_NOT_ALLOWED", "POOL_JOINING_HOST_TLS_VERIFICATION_MISMATCH"]
    assert failures[1].params == ('host edition = "xenserver-standard"',
                                  'pool edition = "xenserver-premium"')


def test_pending_guidance_and_updates_in_progress():
    joiner, master = _pair(joiner_kwargs={
        "pending_guidances": ["reboot_host"]})
    master.pool["current_operations"] = {"OpaqueRef:task": "apply_updates"}
    failures = preflight.check_join(joiner.snapshot(), master.snapshot())
    assert _codes(failures) == ["HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY",
                                "NOT_SUPPORTED_DURING_UPGRADE"]


def test_fields_absent_on_both_sides_are_not_failures():
    joiner, master = _pair()
    for builder in (joiner, master):
        for rec in builder.hosts.values():
            rec["software_version"].pop("db_schema")
            rec.pop("edition")
    assert preflight.check_join(joiner.snapshot(), master.snapshot()) == []
