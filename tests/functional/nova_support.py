"""Helpers for the tests against the real Nova (tests/realnova)."""

import contextlib
import textwrap
import uuid

from keystoneauth1 import loading as ks_loading
import kombu

from poolmgr import bootstrap
from poolmgr.db import api as db_api
from poolmgr import events
from tests.functional import daemon_support as support

def nova_section(nova, token=None, extra=""):
    """A [nova] section reaching the real Nova through admin_token."""
    return textwrap.dedent("""\
        [nova]
        auth_type = admin_token
        endpoint = {endpoint}
        token = {token}
        endpoint_override = {endpoint}
        timeout = 5
        """).format(endpoint=nova.endpoint,
                    token=token or nova.token) + extra


def daemon_extra(nova, sync_interval=600, reflect=True, token=None):
    """The daemon's config beyond daemon_support's: its ENGINE and
    [nova]."""
    return support.ENGINE + nova_section(
        nova, token=token, extra="sync_interval = %s\n"
        "reflect_metadata = %s\nreflect_interval = 0.2\n" % (
            sync_interval, str(reflect).lower()))


def simulated_computes(simulator, hosts=3):
    """Simulated hosts registered as compute1..N: (sim, {compute: uuid})."""
    sim = simulator(hosts=hosts, password=support.XAPI_SECRET)
    uuids = {}
    for i, host in enumerate(sim.hosts, 1):
        db_api.register_host("compute%d" % i, host["url"])
        uuids["compute%d" % i] = host["uuid"]
    return sim, uuids


def active(aggregate_id, hosts):
    """The pool is active with exactly ``hosts`` as active members."""
    pool = db_api.get_pool(aggregate_id)
    return (pool is not None and pool["state"] == db_api.POOL_ACTIVE
            and {h for h, s in support.members(aggregate_id).items()
                 if s == db_api.MEMBER_ACTIVE} == set(hosts))


def pool_aggregate(nova, name, hosts, extra_metadata=None):
    """A flagged aggregate of ``hosts`` made through Nova's API; its id."""
    agg = nova.create_aggregate(name)
    metadata = {events.POOL_FLAG: "true"}
    metadata.update(extra_metadata or {})
    nova.set_metadata(agg["id"], metadata)
    for host in hosts:
        nova.add_host(agg["id"], host)
    return agg["id"]


def nova_conf(nova, token=None, **overrides):
    """A ConfigOpts with that [nova] section (for in-process clients)."""
    conf = bootstrap.build_conf()
    conf([], project="poolmgr", default_config_files=[])
    conf.set_override("auth_type", "admin_token", group="nova")
    conf.register_opts(ks_loading.get_auth_plugin_conf_options(
        "admin_token"), group="nova")
    conf.set_override("endpoint", nova.endpoint, group="nova")
    conf.set_override("token", token or nova.token, group="nova")
    conf.set_override("endpoint_override", nova.endpoint, group="nova")
    conf.set_override("timeout", 5, group="nova")
    for key, value in overrides.items():
        conf.set_override(key, value, group="nova")
    return conf


class NovaBus(support.Bus):
    """The real Nova's exchange and topics, with this test's own queue."""

    def __init__(self, nova):
        super().__init__(nova.transport_url)
        self.exchange = nova.exchange
        self.versioned_topic = nova.versioned_topic
        self.legacy_topic = nova.legacy_topic
        self.pool = "pmtest_%s_poolmgr" % uuid.uuid4().hex[:10]

    def delete_queue(self):
        with kombu.Connection(support.amqp_url(self.rabbit_url)) as conn:
            with contextlib.suppress(Exception):
                conn.default_channel.queue_delete(self.pool)

    def cleanup(self):
        # NOTE(exchange): "nova" and its topic queues are Nova's own.
        if self._transport is not None:
            self._transport.cleanup()
        self.delete_queue()
