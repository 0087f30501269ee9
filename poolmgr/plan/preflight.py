"""xapi's pool.join checks, evaluated before any side effect.

Pure: takes the snapshot read on the joining host (a standalone master of
its own one-host pool) and the snapshot read on the target pool's master,
and returns **every** check that would fail, each with xapi's own code and
params (reference/xapi.md §2.2, in xapi's order) and a hint for the
operator. xapi stops at its first failing check; reporting them all at once
saves an operator one round trip per problem.

Checks whose data poolmgr does not read (management PIF, clustering, bonds,
tunnels, SR-IOV, VLANs, certificates, SM features, pool updates) are left
to xapi itself: a failing pool.join still parks the member with xapi's code.
A field missing on both sides is treated as "not observed" and passes.
"""

import dataclasses

from poolmgr.xenapi import records


@dataclasses.dataclass(frozen=True)
class CheckFailure:
    code: str
    params: tuple
    remediation: str
    check: str

    def as_dict(self):
        return {"code": self.code, "params": list(self.params),
                "remediation": self.remediation, "check": self.check}


def _fail(failures, check, code, params, remediation):
    failures.append(CheckFailure(code=code,
                                 params=tuple(str(p) for p in params),
                                 remediation=remediation, check=check))


def _software(host):
    return host.get("software_version") or {}


def _compat_name(software):
    return software.get("product_brand") or software.get("platform_name")


def _restricted(pool, key):
    return records.as_bool((pool.get("restrictions") or {}).get(key, "false"))


def _pending_guidances(host):
    return [g for g in (host.get("pending_guidances") or []) if g]


def check_join(joiner, master, force=False, compute_vm_uuid=None):
    """Every reason pool.join of ``joiner`` into ``master``'s pool would fail.

    ``joiner`` and ``master`` are ``records.PoolSnapshot``s read on the
    joining host and on the target pool's master. ``force`` mirrors
    pool.join_force, which skips only the homogeneity check (#13).
    ``compute_vm_uuid`` is the joiner's registered compute VM (classic
    topology): poolmgr shuts it down just before pool.join, so it running
    now is expected; any other running VM still refuses the join.
    """
    failures = []
    me_ref = joiner.master_ref
    me = joiner.hosts.get(me_ref, {})
    them = master.master
    my_sw, their_sw = _software(me), _software(them)

    if _restricted(joiner.pool, "restrict_pooling"):
        _fail(failures, "assert_pooling_licensed", "LICENCE_RESTRICTION", [],
              "License the joining host for pooling (Pooling feature).")
    if _restricted(joiner.pool, "restrict_pool_size") \
            and len(master.hosts) >= 3:
        _fail(failures, "assert_pool_size_unrestricted", "LICENCE_RESTRICTION",
              ["Pool_size"],
              "The joining host's licence limits pools to 3 hosts; apply a "
              "licence without the pool-size restriction.")
    if records.as_bool(joiner.pool.get("ha_enabled")):
        _fail(failures, "ha_is_not_enable_on_me", "HA_IS_ENABLED", [],
              "Disable HA on the joining host (xe pool-ha-disable).")
    if records.as_bool(master.pool.get("ha_enabled")):
        _fail(failures, "ha_is_not_enable_on_the_distant_pool",
              "HA_IS_ENABLED", [],
              "Disable HA on the target pool while hosts join, re-enable it "
              "afterwards.")
    if me.get("uuid") and me.get("uuid") == master.master_uuid:
        reason = ("Host is already part of a pool" if len(joiner.hosts) > 1
                  else "Host cannot become slave of itself")
        _fail(failures, "assert_not_joining_myself", "OPERATION_NOT_ALLOWED",
              [reason], "The joining host is the pool master; nothing to do.")
    if len(joiner.hosts) > 1:
        _fail(failures, "assert_i_know_of_no_other_hosts",
              "JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS", [],
              "The host is master of another pool: eject its other members "
              "(or remove it from the other aggregate) first.")
    running = [vm for vm in joiner.running_vms()
               if not compute_vm_uuid or vm.get("uuid") != compute_vm_uuid]
    if running:
        _fail(failures, "assert_no_running_vms_on_me",
              "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS",
              sorted(vm.get("name_label", "?") for vm in running),
              "Shut down or migrate away the running VMs listed (halted VMs "
              "are allowed), then run 'poolmgr-manage pool retry'.")
    busy = [vm for vm in joiner.vms_with_current_operations()
            if not compute_vm_uuid or vm.get("uuid") != compute_vm_uuid]
    if busy:
        _fail(failures, "assert_no_vms_with_current_ops",
              "JOINING_HOST_CANNOT_HAVE_VMS_WITH_CURRENT_OPERATIONS",
              sorted(vm.get("name_label", "?") for vm in busy),
              "Wait for the VM operations on the joining host to finish, "
              "then retry.")
    if _pending_guidances(me):
        _fail(failures, "assert_no_host_pending_mandatory_guidance",
              "HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", [me_ref],
              "Apply the pending update guidance (reboot or toolstack "
              "restart) on the joining host.")
    if _pending_guidances(them):
        _fail(failures, "assert_no_host_pending_mandatory_guidance",
              "HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", [master.master_ref],
              "Apply the pending update guidance on the pool master.")
    if (my_sw.get("platform_version") != their_sw.get("platform_version")
            or _compat_name(my_sw) != _compat_name(their_sw)):
        _fail(failures, "assert_hosts_compatible", "HOSTS_NOT_COMPATIBLE", [],
              "Install the same XenServer platform version on the joining "
              "host as on the master (join_force does not skip this).")
    if not force:
        key = ("xapi", "git_id")
        if (tuple(my_sw.get(k) for k in key) + (_compat_name(my_sw),
                                                  "xs:linux" in my_sw)
                != tuple(their_sw.get(k) for k in key)
                + (_compat_name(their_sw), "xs:linux" in their_sw)):
            _fail(failures, "assert_hosts_homogeneous",
                  "HOSTS_NOT_HOMOGENEOUS", ["Software version differs"],
                  "Bring the joining host to the master's software version "
                  "and updates.")
        my_vendor = (me.get("cpu_info") or {}).get("vendor")
        pool_vendor = (master.pool.get("cpu_info") or {}).get("vendor")
        if my_vendor != pool_vendor:
            _fail(failures, "assert_hosts_homogeneous",
                  "HOSTS_NOT_HOMOGENEOUS", ["CPUs differ"],
                  "The CPU vendors differ (%s vs %s); live migration between "
                  "them is impossible. Use a pool of one vendor, or set "
                  "[xenserver] use_join_force only if you accept that."
                  % (my_vendor, pool_vendor))
    shared = [sr for sr in joiner.srs.values()
              if records.as_bool(sr.get("shared"))
              and not records.as_bool(sr.get("is_tools_sr"))]
    if shared:
        _fail(failures, "assert_no_shared_srs_on_me",
              "JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS", [],
              "Detach (xe pbd-unplug, sr-forget) the shared SRs on the "
              "joining host: %s. The pool's shared SRs are attached "
              "automatically after the join." % ", ".join(sorted(
                  sr.get("name_label", "?") for sr in shared)))
    if ((me.get("external_auth_type") or "") != (them.get("external_auth_type")
                                                  or "")
            or (me.get("external_auth_service_name") or "").lower()
            != (them.get("external_auth_service_name") or "").lower()):
        _fail(failures, "assert_external_auth_matches",
              "POOL_JOINING_EXTERNAL_AUTH_MISMATCH", [],
              "Configure the same external authentication (AD domain) on the "
              "joining host as on the pool, or disable it on both.")
    my_edition = me.get("edition")
    pool_editions = sorted({h.get("edition") for h in master.hosts.values()
                            if h.get("edition")})
    if my_edition and pool_editions and any(e != my_edition
                                            for e in pool_editions):
        _fail(failures, "assert_restrictions_match",
              "LICENSE_HOST_POOL_MISMATCH",
              ['host edition = "%s"' % my_edition,
               'pool edition = "%s"' % pool_editions[0]],
              "License the joining host with the pool's edition.")
    if (my_sw.get("network_backend", "bridge")
            != their_sw.get("network_backend", "bridge")):
        _fail(failures, "assert_homogeneous_vswitch_configuration",
              "OPERATION_NOT_ALLOWED", ["Network backends differ"],
              "Use the same network backend (openvswitch or bridge) on the "
              "joining host as on the master.")
    my_api = _api_version(me)
    their_api = _api_version(them)
    if my_api != their_api:
        _fail(failures, "assert_api_version_matches",
              "POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION",
              [my_api, their_api],
              "Upgrade the older host so both run the same xapi API version.")
    my_schema, their_schema = my_sw.get("db_schema"), their_sw.get("db_schema")
    if (my_schema or their_schema) and my_schema != their_schema:
        _fail(failures, "assert_db_schema_matches",
              "POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA",
              [my_schema or "", their_schema or ""],
              "Upgrade the older host so both have the same xapi database "
              "schema.")
    if (records.as_bool(joiner.pool.get("tls_verification_enabled"))
            != records.as_bool(master.pool.get("tls_verification_enabled"))):
        _fail(failures, "assert_tls_verification_matches",
              "POOL_JOINING_HOST_TLS_VERIFICATION_MISMATCH", [],
              "Enable (or disable) TLS verification on both the joining host "
              "and the pool (xe pool-enable-tls-verification).")
    if "apply_updates" in _current_ops(joiner.pool):
        _fail(failures, "assert_not_in_updating_on_me",
              "NOT_SUPPORTED_DURING_UPGRADE", [],
              "Wait for the update on the joining host to finish.")
    if "apply_updates" in _current_ops(master.pool):
        _fail(failures, "assert_no_hosts_in_updating",
              "NOT_SUPPORTED_DURING_UPGRADE", [],
              "Wait for the pool's update to finish.")
    return failures


def _api_version(host):
    major = host.get("API_version_major")
    minor = host.get("API_version_minor")
    if major is None and minor is None:
        return ""
    return "%s.%s" % (major, minor)


def _current_ops(pool):
    ops = pool.get("current_operations") or {}
    return set(ops.values()) if isinstance(ops, dict) else set(ops)
