"""A drain disables the host's nova-compute service in the real Nova of
the tests (tests/realnova), an undrain enables it again (issue 26)."""

from poolmgr.db import api as db_api
from poolmgr import events
from tests.functional import daemon_support as support
from tests.functional import nova_support
from tests.functional.test_maintenance import ENGINE
from tests.functional.test_maintenance import manage
from tests.functional.test_maintenance import sim  # noqa: F401 - fixture


def service(nova, host):
    found = nova.call("GET", "/os-services?binary=nova-compute&host=%s"
                      % host)["services"]
    assert len(found) == 1, found
    return found[0]


def test_drain_disables_the_nova_compute_service_and_undrain_enables_it(
        nova, sim, daemon_factory):  # noqa: F811 - the fixture
    s = sim(2)
    hosts = sorted(nova.hosts)[:2]
    for name, host in zip(hosts, s.hosts):
        db_api.register_host(name, host["url"])
    agg = nova.create_aggregate("maint")
    nova.set_metadata(agg["id"], {events.POOL_FLAG: "true"})
    for name in hosts:
        nova.add_host(agg["id"], name)
    daemon = daemon_factory(extra=ENGINE % 20 + nova_support.nova_section(
        nova, extra="sync_interval = 600\nreflect_interval = 0.2\n")).start()
    support.wait_for(lambda: (db_api.get_pool(agg["id"]) or {}).get(
        "state") == "active" and len(db_api.list_members(agg["id"])) == 2
        and all(m["state"] == "active"
                for m in db_api.list_members(agg["id"])),
        timeout=90, what="an active pool from Nova's aggregate")
    target = hosts[1]
    assert service(nova, target)["status"] == "enabled"
    result = manage(daemon, "host", "drain", target, "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    disabled = service(nova, target)
    assert (disabled["status"], disabled["disabled_reason"]) == (
        "disabled", "poolmgr drain")
    assert service(nova, hosts[0])["status"] == "enabled"
    journal = [(o["kind"], o["status"]) for o in
               db_api.list_operations(agg["id"], limit=100)]
    assert ("nova_service_disable", "succeeded") in journal
    result = manage(daemon, "host", "undrain", target)
    assert result.returncode == 0, result.stdout + result.stderr
    enabled = service(nova, target)
    assert (enabled["status"], enabled["disabled_reason"]) == (
        "enabled", None)
