"""event.from: token, sync-then-follow, coalescing, add/mod/del (§7)."""

import threading
import time

from tests.simulator.sim_client import fails
from tests.simulator.sim_client import join
from tests.simulator.sim_client import login

CLASSES = ["pool", "host", "host_metrics", "sr", "pbd"]


def event_from(session, classes, token, timeout=0.5):
    return getattr(session.xenapi.event, "from")(classes, token, timeout)


def by_class(batch):
    found = {}
    for event in batch["events"]:
        found.setdefault(event["class"], []).append(event)
    return found


def test_first_call_returns_every_object_as_add(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    batch = event_from(session, CLASSES, "")
    events = by_class(batch)
    assert {e["operation"] for e in batch["events"]} == {"add"}
    assert set(events) == set(CLASSES)
    host_event = events["host"][0]
    assert host_event["snapshot"]["uuid"] == sim.hosts[0]["uuid"]
    assert host_event["ref"] == session.xenapi.host.get_all()[0]
    assert batch["valid_ref_counts"]["host"] == "1"


def test_token_is_two_zero_padded_generations(simulator):
    sim = simulator(hosts=1)
    token = event_from(login(sim.hosts[0]), ["pool"], "")["token"]
    first, second = token.split(",")
    assert len(first) == len(second) == 20 and first.isdigit()


def test_next_call_returns_only_changes_since_the_token(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    token = event_from(session, CLASSES, "")["token"]
    pool = session.xenapi.pool.get_all()[0]
    session.xenapi.pool.set_name_label(pool, "renamed")
    batch = event_from(session, CLASSES, token)
    assert [(e["class"], e["operation"], e["ref"]) for e in batch["events"]] \
        == [("pool", "mod", pool)]
    assert batch["events"][0]["snapshot"]["name_label"] == "renamed"
    assert batch["token"] > token


def test_changes_to_one_object_are_coalesced_into_one_event(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    token = event_from(session, ["pool"], "")["token"]
    pool = session.xenapi.pool.get_all()[0]
    for name in ("a", "b", "c"):
        session.xenapi.pool.set_name_label(pool, name)
    events = event_from(session, ["pool"], token)["events"]
    assert len(events) == 1
    assert events[0]["snapshot"]["name_label"] == "c"


def test_object_created_since_the_token_is_an_add_even_if_modified(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    token = event_from(session, ["sr"], "")["token"]
    host = session.xenapi.host.get_all()[0]
    sr = session.xenapi.SR.create(host, {"server": "nfs"}, "0", "NFS", "",
                                  "nfs", "user", True, {})
    session.xenapi.SR.set_name_label(sr, "NFS-renamed")
    events = event_from(session, ["sr"], token)["events"]
    assert [(e["operation"], e["ref"]) for e in events] == [("add", sr)]
    assert events[0]["snapshot"]["name_label"] == "NFS-renamed"


def test_deleted_object_is_a_del_event_without_snapshot(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    host = session.xenapi.host.get_all()[0]
    sr = session.xenapi.SR.create(host, {"server": "nfs"}, "0", "NFS", "",
                                  "nfs", "user", True, {})
    token = event_from(session, ["sr"], "")["token"]
    pbd = session.xenapi.SR.get_PBDs(sr)[0]
    session.xenapi.PBD.unplug(pbd)
    session.xenapi.SR.forget(sr)
    events = event_from(session, ["sr"], token)["events"]
    assert len(events) == 1
    assert events[0]["operation"] == "del"
    assert events[0]["ref"] == sr
    assert "snapshot" not in events[0]


def test_new_pbd_is_a_mod_of_its_host_and_sr(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    host = session.xenapi.host.get_all()[0]
    sr = session.xenapi.SR.introduce("a-uuid", "iso", "", "iso", "iso",
                                     False, {})
    token = event_from(session, ["host", "sr", "pbd"], "")["token"]
    pbd = session.xenapi.PBD.create({"host": host, "SR": sr,
                                     "device_config": {}})
    events = {(e["class"], e["operation"], e["ref"])
              for e in event_from(session, ["host", "sr", "pbd"],
                                  token)["events"]}
    assert events == {("pbd", "add", pbd), ("host", "mod", host),
                      ("sr", "mod", sr)}


def test_subscription_to_one_object_sees_only_it(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    pool = session.xenapi.pool.get_all()[0]
    events = event_from(session, ["pool/%s" % pool], "")["events"]
    assert [e["ref"] for e in events] == [pool]


def test_call_blocks_until_a_change_arrives(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    token = event_from(session, ["pool"], "")["token"]

    def rename():
        time.sleep(0.3)
        other = login(sim.hosts[0])
        other.xenapi.pool.set_name_label(other.xenapi.pool.get_all()[0], "x")
    threading.Thread(target=rename).start()
    start = time.monotonic()
    events = event_from(session, ["pool"], token, timeout=10.0)["events"]
    assert 0.2 < time.monotonic() - start < 5.0
    assert events[0]["snapshot"]["name_label"] == "x"


def test_no_change_returns_an_empty_batch_after_the_timeout(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    token = event_from(session, ["pool"], "")["token"]
    start = time.monotonic()
    batch = event_from(session, ["pool"], token, timeout=0.3)
    assert batch["events"] == []
    assert time.monotonic() - start >= 0.25
    assert batch["token"] == token


def test_join_is_seen_as_a_new_host_and_metrics_going_live(simulator):
    sim = simulator(hosts=2)
    master = login(sim.hosts[0])
    token = event_from(master, ["host"], "")["token"]
    join(sim, sim.hosts[1], sim.hosts[0])
    events = event_from(master, ["host"], token)["events"]
    added = [e for e in events if e["operation"] == "add"]
    assert [e["snapshot"]["uuid"] for e in added] == [sim.hosts[1]["uuid"]]


def test_bad_token_and_bad_class_are_parse_failures(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    assert fails(getattr(session.xenapi.event, "from"), ["pool"], "junk",
                 0.1) == ["EVENT_FROM_TOKEN_PARSE_FAILURE", "junk"]
    assert fails(getattr(session.xenapi.event, "from"), ["nope"], "",
                 0.1) == ["EVENT_SUBSCRIPTION_PARSE_FAILURE", "nope"]


def test_event_inject_forces_a_mod_event(simulator):
    sim = simulator(hosts=1)
    session = login(sim.hosts[0])
    token = event_from(session, ["pool"], "")["token"]
    pool = session.xenapi.pool.get_all()[0]
    session.xenapi.event.inject("pool", pool)
    events = event_from(session, ["pool"], token)["events"]
    assert [(e["operation"], e["ref"]) for e in events] == [("mod", pool)]
