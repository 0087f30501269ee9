"""Nova notifications in, XenServer pool out: the daemon end to end.

``poolmgr --config-file F`` (intake + reconciler under cotyledon) runs as a
subprocess against real RabbitMQ and MariaDB and drives the simulator over
XML-RPC; Nova is played by FakeNova publishing through oslo.messaging.
"""

import pytest

from poolmgr.db import api as db_api
from poolmgr.simulator import fakenova
from tests.functional import daemon_support as support

@pytest.mark.parametrize("formats", [(fakenova.VERSIONED,),
                                     (fakenova.LEGACY,)], ids="+".join)
def test_pool_forms_and_follows_removal(bus, tmp_path, mysql_url, simulator,
                                        formats):
    sim = simulator(hosts=3, password=support.XAPI_SECRET)
    for i, host in enumerate(sim.hosts, 1):
        db_api.register_host("compute%d" % i, host["url"])
    daemon = support.Daemon(tmp_path, bus, mysql_url,
                            extra=support.ENGINE).start()
    try:
        nova = bus.nova(formats=formats)
        agg = nova.create_aggregate("pool-x")
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
        for host in ("compute1", "compute2", "compute3"):
            nova.add_host(agg, host)
        support.wait_for(
            lambda: support.members(agg) == {"compute1": "active",
                                             "compute2": "active",
                                             "compute3": "active"}
            and db_api.get_pool(agg)["state"] == db_api.POOL_ACTIVE,
            timeout=90, what="an active pool of three members")
        pool_uuid = sim.pool_uuid("xs01")
        assert {sim.pool_uuid(h) for h in ("xs02", "xs03")} == {pool_uuid}
        assert sim.role("xs01") == "master"
        nova.remove_host(agg, "compute2")
        support.wait_for(
            lambda: support.members(agg).get("compute2") == "removed",
            timeout=90, what="compute2 ejected")
        assert sim.pool_uuid("xs02") != pool_uuid
        assert len(sim.calls("pool.join", "xs02")) == 1
        assert len(sim.calls("pool.eject", "xs01")) == 1
        code, _ = daemon.stop()
        assert code == 0
        assert support.XAPI_SECRET not in daemon.log_text()
    finally:
        daemon.kill()
