"""The demo's [nova]: poolmgr.nova.client.NovaClient's calls on a FakeNova.

Only for ``poolmgr-demo`` (tests use a real Nova): the sync lists the
fake's aggregates and reflection writes into them, so the demo shows the
metadata keys poolmgr keeps in Nova. It lives with the demo, since it
speaks poolmgr's Nova client and the simulator beside which FakeNova lives
imports nothing of poolmgr.
"""

import copy

from oslo_utils import timeutils

from poolmgr.nova import client as nova
from poolmgr.simulator.fakenova import AggregateError


class DemoClient:
    """NovaClient's calls (list, compute hosts, metadata) on a FakeNova."""

    def __init__(self, fake):
        self.fake = fake
        self.calls = 0

    def list_aggregates(self):
        self.calls += 1
        started_at = timeutils.utcnow()
        return nova.Listing(started_at=started_at, aggregates=tuple(
            copy.deepcopy(a) for _, a in sorted(self.fake.aggregates.items())))

    def compute_hosts(self):
        self.calls += 1
        return sorted({h for a in self.fake.aggregates.values()
                       for h in a["hosts"]})

    def update_metadata(self, aggregate_id, changes):
        self.calls += 1
        try:
            self.fake.set_metadata(aggregate_id, changes)
        except AggregateError as exc:
            raise nova.NovaNotFound(str(exc))
        return copy.deepcopy(self.fake.aggregates[int(aggregate_id)])
