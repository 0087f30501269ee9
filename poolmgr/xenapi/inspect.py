"""What one host's xapi says about itself: the operator's ``host check``."""

import urllib.parse

from poolmgr.xenapi import errors
from poolmgr.xenapi import session as xsession

_HINTS = {
    "SESSION_AUTHENTICATION_FAILED":
        "check [xenserver] connection_username/connection_password",
    "TLS_ERROR":
        "the certificate did not verify: set [xenserver] ca_file to the CA "
        "that signed it (verify_tls=false only for lab hosts)",
    "CONNECTION_FAILED":
        "nothing answers at that URL: check the address, the port and that "
        "xapi runs (xe host-list on the host)",
    "TIMEOUT":
        "xapi did not answer within [xenserver] call_timeout",
}


def check_host(conf, url):
    """A dict describing reachability, credentials, TLS, version and pool.

    Never raises for xapi trouble: the failure is part of the report, with
    xapi's code and a hint, and ``ok`` is False.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    report = {
        "url": url,
        "tls": scheme == "https",
        "tls_verified": scheme == "https" and conf.xenserver.verify_tls,
        "reachable": False,
        # NOTE(unknown): None until xapi answers a login; a connection or
        # TLS failure (a pin mismatch) sent no credentials to judge.
        "credentials_ok": None,
        "ok": False,
    }
    session = xsession.SessionCache(conf).fresh(url, follow_master=False)
    try:
        session.login()
        report["reachable"] = report["credentials_ok"] = True
        _describe(session, report)
        report["ok"] = True
    except errors.XapiError as exc:
        if exc.code == "HOST_IS_SLAVE":
            # A slave only answers logins with its master's address; that is
            # a healthy pool member, reachable with good credentials.
            report.update(reachable=True, credentials_ok=True, ok=True,
                          role="slave",
                          master_address=exc.params[0] if exc.params else None)
        else:
            report["reachable"] = not isinstance(exc, errors.XapiUnreachable)
            if exc.code == "SESSION_AUTHENTICATION_FAILED":
                report["credentials_ok"] = False
            report["error_code"] = exc.code
            report["error_params"] = exc.params
            report["hint"] = _HINTS.get(exc.code)
    finally:
        session.logout()
    return report


def _describe(session, report):
    hosts = session.call("host.get_all_records")
    pools = session.call("pool.get_all_records")
    pool = next(iter(pools.values()), {})
    address = urllib.parse.urlsplit(report["url"]).hostname
    me_ref, me = next(((ref, h) for ref, h in hosts.items()
                       if h.get("address") == address),
                      (pool.get("master"), hosts.get(pool.get("master"), {})))
    version = me.get("software_version", {})
    report.update(
        role="master" if me_ref == pool.get("master") else "slave",
        host_uuid=me.get("uuid"),
        name_label=me.get("name_label"),
        product_version=version.get("product_version"),
        platform_version=version.get("platform_version"),
        api_version="%s.%s" % (me.get("API_version_major"),
                               me.get("API_version_minor")),
        pool_uuid=pool.get("uuid"),
        pool_name=pool.get("name_label"),
        pool_members=len(hosts),
        master=hosts.get(pool.get("master"), {}).get("name_label"),
    )
    vms = session.call("VM.get_all_records")
    report["running_vms"] = sorted(
        vm.get("name_label", ref) for ref, vm in vms.items()
        if vm.get("resident_on") == me_ref
        and not vm.get("is_control_domain")
        and vm.get("power_state") == "Running")
