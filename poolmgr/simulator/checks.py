"""xapi's pool.join pre-checks, in xapi's order (reference §2.2).

``pre_join_checks`` raises the FIRST failing check, as xapi does. Local
means the joiner's own database; remote means the master's, which real xapi
reads over RPC with the session it opened on the master.
"""

from poolmgr.simulator.model import Failure


def _compat_name(version):
    return version.get("product_brand") or version.get("platform_name")


def pre_join_checks(world, joiner, master, force):
    local_db, remote_db = joiner.db, master.db
    local_host = joiner.host_record()
    remote_master = master.host_record()
    # 0. get_pool: the remote must be in exactly one pool.
    if len(remote_db.tables["pool"]) != 1:
        raise Failure("INTERNAL_ERROR",
                      "Remote host does not belong to a pool.")
    # 2. management interface
    if not any(p["management"] for p in local_db.tables["PIF"].values()
               if p["host"] == joiner.host_ref()):
        raise Failure("HOST_STILL_BOOTING")
    # 3. HA on me; 6. HA on the distant pool
    if local_db.pool()["ha_enabled"]:
        raise Failure("HA_IS_ENABLED")
    if remote_db.pool()["ha_enabled"]:
        raise Failure("HA_IS_ENABLED")
    # 7. joining myself
    if remote_master["uuid"] == local_host["uuid"]:
        if len(local_db.tables["host"]) > 1:
            raise Failure("OPERATION_NOT_ALLOWED",
                          "Host is already part of a pool")
        raise Failure("OPERATION_NOT_ALLOWED",
                      "Host cannot become slave of itself")
    # 8. master of other hosts
    if len(local_db.tables["host"]) > 1:
        raise Failure("JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS")
    guests = [vm for vm in local_db.tables["VM"].values()
              if not vm["is_control_domain"]]
    # 9. running VMs (only Running counts)
    if any(vm["power_state"] == "Running" for vm in guests):
        raise Failure("JOINING_HOST_CANNOT_HAVE_RUNNING_VMS")
    # 10. VMs with current operations
    if any(vm.get("current_operations") for vm in guests):
        raise Failure("JOINING_HOST_CANNOT_HAVE_VMS_WITH_CURRENT_OPERATIONS")
    local_version = local_host["software_version"]
    remote_version = remote_master["software_version"]
    # 12. compatible platform (enforced even by join_force)
    if (local_version.get("platform_version")
            != remote_version.get("platform_version")
            or _compat_name(local_version) != _compat_name(remote_version)):
        raise Failure("HOSTS_NOT_COMPATIBLE")
    # 13. homogeneous: the only check join_force skips
    if not force:
        def key(v):
            return (v.get("xapi"), _compat_name(v), v.get("git_id"),
                    "xs:linux" in v)
        if key(local_version) != key(remote_version):
            raise Failure("HOSTS_NOT_HOMOGENEOUS", "Software version differs")
        if (local_host["cpu_info"].get("vendor")
                != remote_db.pool()["cpu_info"].get("vendor")):
            raise Failure("HOSTS_NOT_HOMOGENEOUS", "CPUs differ")
    # 14. shared SRs on the joiner (the tools ISO SR is exempt)
    if any(sr["shared"] and not sr.get("is_tools_sr")
           for sr in local_db.tables["SR"].values()):
        raise Failure("JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS")
    # 15-18. network objects on the joiner
    if joiner.bonds:
        raise Failure("POOL_JOINING_HOST_HAS_BONDS")
    if joiner.tunnels:
        raise Failure("POOL_JOINING_HOST_HAS_TUNNELS")
    if joiner.vlans:
        raise Failure("POOL_JOINING_HOST_HAS_NON_MANAGEMENT_VLANS")
    # 19. management VLAN
    if joiner.management_vlan != master.management_vlan:
        raise Failure("POOL_JOINING_HOST_MANAGEMENT_VLAN_DOES_NOT_MATCH",
                      joiner.management_vlan, master.management_vlan)
    # 20. external auth
    if (local_host["external_auth_type"] != remote_master["external_auth_type"]
            or local_host["external_auth_service_name"].lower()
            != remote_master["external_auth_service_name"].lower()):
        raise Failure("POOL_JOINING_EXTERNAL_AUTH_MISMATCH")
    # 21. edition against every remote host
    for remote in remote_db.tables["host"].values():
        if remote["edition"] != local_host["edition"]:
            raise Failure("LICENSE_HOST_POOL_MISMATCH",
                          'host edition = "%s"' % local_host["edition"],
                          'pool edition = "%s"' % remote["edition"])
    # 22. network backend
    if (local_version.get("network_backend", "bridge")
            != remote_version.get("network_backend", "bridge")):
        raise Failure("OPERATION_NOT_ALLOWED", "Network backends differ")
    # 23. API version
    local_api = "%s.%s" % (local_host["API_version_major"],
                           local_host["API_version_minor"])
    remote_api = "%s.%s" % (remote_master["API_version_major"],
                            remote_master["API_version_minor"])
    if local_api != remote_api:
        raise Failure("POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION",
                      local_api, remote_api)
    # 24. DB schema
    local_schema = local_version.get("db_schema")
    remote_schema = remote_version.get("db_schema")
    if not local_schema or local_schema != remote_schema:
        raise Failure("POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA",
                      local_schema or "", remote_schema or "")
    # 28. TLS verification
    if (local_db.pool()["tls_verification_enabled"]
            != remote_db.pool()["tls_verification_enabled"]):
        raise Failure("POOL_JOINING_HOST_TLS_VERIFICATION_MISMATCH")
    # 31/32. updates in progress
    if "apply_updates" in local_db.pool()["current_operations"].values():
        raise Failure("NOT_SUPPORTED_DURING_UPGRADE")
    if "apply_updates" in remote_db.pool()["current_operations"].values():
        raise Failure("NOT_SUPPORTED_DURING_UPGRADE")
