"""poolmgr.nova against the real Nova 34 (keystoneauth1 + openstacksdk)."""

import pytest

from poolmgr.nova import client as nova_api
from tests.functional import nova_support


def test_listing_gives_hosts_in_novas_order_and_metadata(nova):
    agg = nova.create_aggregate("order")
    nova.set_metadata(agg["id"], {"hypervisor_pool": "true"})
    nova.add_host(agg["id"], "compute3")
    nova.add_host(agg["id"], "compute1")
    listing = nova_api.NovaClient(
        nova_support.nova_conf(nova)).list_aggregates()
    assert [(a["id"], a["name"], a["hosts"], a["metadata"])
            for a in listing.aggregates] == [
        (agg["id"], "order", ["compute3", "compute1"],
         {"hypervisor_pool": "true"})]


def test_compute_hosts_lists_every_nova_compute_service(nova):
    client = nova_api.NovaClient(nova_support.nova_conf(nova))
    assert client.compute_hosts() == sorted(nova.hosts)


def test_update_metadata_sets_and_deletes_keys_in_one_call(nova):
    agg = nova.create_aggregate("meta")
    nova.set_metadata(agg["id"], {"hypervisor_pool": "true", "a": "1"})
    client = nova_api.NovaClient(nova_support.nova_conf(nova))
    client.update_metadata(agg["id"], {"a": None, "b": "2"})
    assert nova.get_aggregate(agg["id"])["metadata"] == {
        "hypervisor_pool": "true", "b": "2"}


def test_wrong_token_is_refused_credentials_naming_no_secret(nova):
    client = nova_api.NovaClient(nova_support.nova_conf(
        nova, token="wrong-S3cret-token"))
    with pytest.raises(nova_api.NovaUnauthorized) as caught:
        client.list_aggregates()
    assert "refused the credentials" in str(caught.value)
    assert "S3cret" not in str(caught.value)


def test_unreachable_endpoint_is_one_clear_error(nova):
    client = nova_api.NovaClient(nova_support.nova_conf(
        nova, endpoint_override="http://127.0.0.1:9/v2.1"))
    with pytest.raises(nova_api.NovaError) as caught:
        client.list_aggregates()
    assert "unreachable" in str(caught.value)
