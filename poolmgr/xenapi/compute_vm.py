"""The compute VM of a host (the classic topology, issue 12).

In a Nova-on-XenServer cloud nova-compute runs in a VM on the very host it
manages. ``host register --compute-vm auto`` finds that VM with the rule in
``choose``; ``host check`` reports whether the registered one is there and
running on that host.
"""

import urllib.parse

from poolmgr.xenapi import errors
from poolmgr.xenapi import records
from poolmgr.xenapi import session as xsession


class NoSingleCandidate(Exception):
    """``auto`` found no compute VM, or more than one."""

    def __init__(self, message, candidates):
        super().__init__(message)
        self.candidates = candidates


def _guests(vms):
    return {ref: vm for ref, vm in vms.items()
            if not records.as_bool(vm.get("is_control_domain"))
            and not records.as_bool(vm.get("is_a_template"))
            and not records.as_bool(vm.get("is_a_snapshot"))}


def host_ref_for(hosts, url, compute_host=None):
    """The ref of the host the URL points at (by address, else by name)."""
    address = urllib.parse.urlsplit(url).hostname
    for key in (address, compute_host):
        for ref, host in hosts.items():
            if key and key in (host.get("address"), host.get("hostname"),
                               host.get("name_label")):
                return ref
    return None


def on_host(vm, host_ref):
    """Resident on the host, or (halted) with it as affinity."""
    return host_ref in (vm.get("resident_on"), vm.get("affinity"))


def choose(vms, hosts, host_ref, compute_host):
    """The compute VM's uuid, by this rule, in order:

    1. the VM on that host whose name_label is ``nova-compute-<name>`` (the
       name being the compute host, or the XenServer host's name_label or
       hostname) or exactly the compute host's name;
    2. failing any such VM, the only running VM on that host (not the
       control domain, not a template or snapshot).

    "On that host" means resident there, or halted with it as affinity.
    Raises ``NoSingleCandidate`` (with every candidate) otherwise.
    """
    host = hosts.get(host_ref, {})
    names = {compute_host}
    for name in (compute_host, host.get("name_label"), host.get("hostname")):
        if name:
            names.add("nova-compute-%s" % name)
    mine = {ref: vm for ref, vm in _guests(vms).items()
            if on_host(vm, host_ref)}
    named = [vm for vm in mine.values() if vm.get("name_label") in names]
    if len(named) == 1:
        return named[0]["uuid"]
    if named:
        raise NoSingleCandidate(
            "%d VMs are named like a compute VM of %s" % (len(named),
                                                          compute_host),
            _describe(named))
    running = [vm for vm in mine.values()
               if vm.get("power_state") == "Running"]
    if len(running) == 1:
        return running[0]["uuid"]
    raise NoSingleCandidate(
        "no VM named nova-compute-%s and %d running VMs on the host"
        % (compute_host, len(running)), _describe(running or list(
            mine.values())))


def _describe(vms):
    return sorted("%s (%s, %s)" % (vm.get("uuid"), vm.get("name_label", "?"),
                                   vm.get("power_state", "?")) for vm in vms)


def _read(conf, url, pin=None):
    pin_lookup = xsession.inventory_pins
    if pin:
        # NOTE(new-pin): host register looks the VM up before it stores the
        # pin it just chose, so that pin verifies this address; the
        # inventory's pins verify any other (a master a redirection names).
        address = urllib.parse.urlsplit(url).hostname

        def pin_lookup(target):
            if urllib.parse.urlsplit(target).hostname == address:
                return frozenset([pin])
            return xsession.inventory_pins(target)
    # NOTE(follow): a registered host may already be a pool member, whose
    # VMs only its master lists.
    session = xsession.SessionCache(conf, pin_lookup=pin_lookup).fresh(
        url, follow_master=True)
    try:
        session.login()
        return (session.call("host.get_all_records"),
                session.call("VM.get_all_records"))
    finally:
        session.logout()


def discover(conf, url, compute_host, pin=None):
    """``--compute-vm auto``: the uuid, or NoSingleCandidate/XapiError.

    ``pin``: the fingerprint ``host register --pin`` is about to store; the
    host at ``url`` is accepted on that certificate only."""
    hosts, vms = _read(conf, url, pin)
    host_ref = host_ref_for(hosts, url, compute_host)
    if host_ref is None:
        raise NoSingleCandidate("xapi at that URL lists no host %s"
                                % compute_host, [])
    return choose(vms, hosts, host_ref, compute_host)


def check(conf, url, compute_host, vm_uuid):
    """What ``host check`` adds about the registered compute VM."""
    report = {"compute_vm_uuid": vm_uuid}
    if not vm_uuid:
        report["compute_vm"] = "none registered (independent compute)"
        return report
    try:
        hosts, vms = _read(conf, url)
    except errors.XapiError as exc:
        report.update(compute_vm="unknown: %s" % exc.code,
                      compute_vm_ok=False)
        return report
    host_ref = host_ref_for(hosts, url, compute_host)
    vm = next((v for v in vms.values() if v.get("uuid") == vm_uuid), None)
    if vm is None:
        report.update(compute_vm="missing: xapi has no VM with that uuid",
                      compute_vm_ok=False)
        return report
    running_here = (vm.get("power_state") == "Running"
                    and vm.get("resident_on") == host_ref)
    report.update(
        compute_vm_name_label=vm.get("name_label"),
        compute_vm_power_state=vm.get("power_state"),
        compute_vm_resident_here=vm.get("resident_on") == host_ref,
        compute_vm="running on this host" if running_here else (
            "%s, %s" % (vm.get("power_state"),
                        "resident here" if vm.get("resident_on") == host_ref
                        else "not resident on this host")),
        compute_vm_ok=running_here)
    return report
