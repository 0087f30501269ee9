"""The ownership rule on plain data: the lowest contesting id owns a pool."""

import itertools

from poolmgr.engine import ownership
from poolmgr.plan import planner


def _desired(aggregate_id, name):
    return planner.Desired(aggregate_id=aggregate_id, name=name,
                           hosts=("xs01", "xs03"), managed=True)


POOL = frozenset(["xs01", "xs02"])


def test_lowest_id_owns_whatever_order_the_claimants_come_in():
    claimants = [(7, "pool-g", POOL), (2, "pool-b", POOL),
                 (5, "pool-e", frozenset(["xs01"]))]
    owners = {ownership.owner_of(9, list(order))
              for order in itertools.permutations(claimants)}
    assert owners == {ownership.Owner(2, "pool-b")}


def test_aggregate_with_the_lowest_id_owns_its_pool_itself():
    claimants = [(1, "pool-a", POOL), (3, "pool-c", frozenset(["xs01"]))]
    assert ownership.owner_of(1, claimants).aggregate_id == 1
    assert ownership.owner_of(3, claimants).aggregate_id == 1


def test_uncontested_pool_is_the_aggregates_own():
    assert ownership.owner_of(4, []) == ownership.Owner(4, None)


def test_older_aggregate_wanting_part_of_a_pool_does_not_take_it_over():
    # Aggregate 2 wants only xs01 of aggregate 5's pool: owning it would
    # merge xs02 (aggregate 5's) into aggregate 2's pool.
    claimants = [(2, "pool-b", frozenset(["xs01"])), (5, "pool-e", POOL)]
    assert ownership.owner_of(2, claimants) == ownership.Owner(5, "pool-e")


def test_pool_no_contestant_can_hold_whole_is_owned_by_none():
    claimants = [(1, "pool-a", frozenset(["xs01"])),
                 (2, "pool-b", frozenset(["xs02"]))]
    owner = ownership.owner_of(1, claimants)
    assert owner.aggregate_id is None
    assert owner.overlap == ((1, "pool-a"), (2, "pool-b"))
    text = ownership.reason("xs01", _desired(1, "pool-a"), owner)
    assert "aggregate 1 (pool-a) and aggregate 2 (pool-b)" in text
    assert "poolmgr-manage pool retry 1 xs01" in text


def test_reason_names_the_owner_and_the_fix():
    text = ownership.reason("xs01", _desired(2, "pool-c"),
                            ownership.Owner(1, "pool-a"))
    assert "aggregate 1 (pool-a)" in text
    assert "remove xs01 from aggregate 2 (pool-c) or from aggregate 1" in text
    assert "owns that pool" in text
    assert "poolmgr-manage pool retry 2 xs01" in text


def test_owned_host_is_blocked_and_parked_with_the_owners_name():
    view = ownership.owned_view("xs01", _desired(2, "pool-c"),
                                ownership.Owner(1, "pool-a"))
    step = planner._blocked(view)
    assert step.kind == planner.BLOCKED and step.params["park"]
    assert step.params["code"] == ownership.OWNED_CODE
    assert "owned by aggregate 1 (pool-a)" in step.params["params"]
