"""The ownership rule on plain data: the lowest contesting id owns a pool."""

import itertools

from poolmgr.engine import ownership
from poolmgr import planner


def _desired(aggregate_id, name):
    return planner.Desired(aggregate_id=aggregate_id, name=name,
                           hosts=("xs01", "xs03"), managed=True)


def test_lowest_id_owns_whatever_order_the_claimants_come_in():
    claimants = [(7, "pool-g"), (2, "pool-b"), (5, "pool-e")]
    owners = {ownership.owner_of(9, list(order))
              for order in itertools.permutations(claimants)}
    assert owners == {ownership.Owner(2, "pool-b")}


def test_aggregate_with_the_lowest_id_owns_its_pool_itself():
    assert ownership.owner_of(1, [(3, "pool-c")]).aggregate_id == 1


def test_uncontested_pool_is_the_aggregates_own():
    assert ownership.owner_of(4, []) == ownership.Owner(4, None)


def test_reason_names_the_owner_and_the_fix():
    text = ownership.reason("xs01", _desired(2, "pool-c"),
                            ownership.Owner(1, "pool-a"))
    assert "aggregate 1 (pool-a)" in text
    assert "remove xs01 from aggregate 2 (pool-c) or from aggregate 1" in text
    assert "poolmgr-manage pool retry 2 xs01" in text


def test_owned_host_is_blocked_and_parked_with_the_owners_name():
    view = ownership.owned_view("xs01", _desired(2, "pool-c"),
                                ownership.Owner(1, "pool-a"))
    step = planner._blocked(view)
    assert step.kind == planner.BLOCKED and step.params["park"]
    assert step.params["code"] == ownership.OWNED_CODE
    assert "owned by aggregate 1 (pool-a)" in step.params["params"]
