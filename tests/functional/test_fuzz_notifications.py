"""Fuzzed intake: malformed notifications interleaved with valid ones.

Every generated malformed message is invalid *by construction* (it breaks
one rule of Nova's notification format: a wrong type, a missing field, an
unknown event type, a bad timestamp...), so the test knows without asking
the parser which messages must be rejected. The bulk (10,000 malformed
messages) goes in-process through oslo's batch dispatcher and poolmgr's
endpoint into a real database; a sample of raw bodies (including non-JSON
and broken envelopes) goes over real RabbitMQ through the daemon.

What must hold: nothing escapes (no crash), nothing is requeued (the
queue drains), every valid message is applied, every malformed aggregate
notification is counted once in the notification log.
"""

import datetime
import itertools
import json
import os
import re
import warnings

from hypothesis import errors as hyp_errors
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from poolmgr.db import api as db_api
from poolmgr.db import migration
from poolmgr import intake
from tests.functional import daemon_support as support

T0 = datetime.datetime(2026, 11, 1, 10, 0, 0)
FLAG = "hypervisor_pool"
BAD_AGGREGATE_BASE = 900000
_VALID_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")
_VALID_TYPES = {"aggregate.%s.%s" % (a, p)
                for a in ("create", "delete", "add_host", "remove_host",
                          "update_metadata", "update_prop")
                for p in ("start", "end")}
_LEGACY_TYPES = {"aggregate.%s.%s" % (a, p)
                 for a in ("create", "delete", "addhost", "removehost",
                           "updatemetadata", "updateprop")
                 for p in ("start", "end")}


def _stamp(n):
    return str(T0 + datetime.timedelta(milliseconds=n))


def versioned(message_id, n, agg_id, action, name, hosts, metadata):
    """A versioned ``aggregate.<action>.end`` as oslo puts it on the wire."""
    return {"message_id": message_id, "publisher_id": "nova-api:fuzz",
            "event_type": "aggregate.%s.end" % action, "priority": "INFO",
            "timestamp": _stamp(n),
            "payload": {"nova_object.name": "AggregatePayload",
                        "nova_object.namespace": "nova",
                        "nova_object.version": "1.1",
                        "nova_object.data": {
                            "id": agg_id,
                            "uuid": "00000000-0000-0000-0000-%012d" % agg_id,
                            "name": name, "hosts": list(hosts),
                            "metadata": dict(metadata),
                            "availability_zone": None}}}


def legacy(message_id, n, agg_id, host):
    return {"message_id": message_id, "publisher_id": "aggregate.%d" % agg_id,
            "event_type": "aggregate.addhost.end", "priority": "INFO",
            "timestamp": _stamp(n),
            "payload": {"aggregate_id": str(agg_id), "host_name": host}}


def valid_stream(agg_id, first_n):
    """What Nova sends to build a 2-host pool; and the state it leads to."""
    name = "fuzz-%d" % agg_id
    flag = {FLAG: "true"}
    steps = [("create", [], {}), ("update_metadata", [], flag),
             ("add_host", ["h%d-a" % agg_id], flag),
             ("add_host", ["h%d-a" % agg_id, "h%d-b" % agg_id], flag)]
    messages = [versioned("ok-%d-%d" % (agg_id, i), first_n + i, agg_id,
                          action, name, hosts, md)
                for i, (action, hosts, md) in enumerate(steps)]
    expected = (name, ["h%d-a" % agg_id, "h%d-b" % agg_id], flag, False)
    return messages, expected


# ---------------------------------------------------------------------------
# Malformed messages, one broken rule each
# ---------------------------------------------------------------------------

json_leaf = (st.none() | st.booleans() | st.integers() | st.floats()
             | st.text(max_size=12))
json_any = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
not_a_dict = json_any.filter(lambda v: not isinstance(v, dict))
not_a_string = json_any.filter(lambda v: not isinstance(v, str))
not_an_int = json_any.filter(
    lambda v: isinstance(v, bool) or not isinstance(v, int))
bad_timestamp = not_a_string | st.text(max_size=40).filter(
    lambda s: not _VALID_TIMESTAMP.match(s))
bad_event_type = st.text(max_size=30).map(lambda s: "aggregate." + s).filter(
    lambda s: s not in _VALID_TYPES
    and not s.startswith("aggregate.cache_images."))


def _data(message):
    return message["payload"]["nova_object.data"]


MUTATIONS = {
    "payload not an object": not_a_dict.map(
        lambda v: lambda m: m.update(payload=v)),
    "unknown event type": bad_event_type.map(
        lambda v: lambda m: m.update(event_type=v)),
    "bad timestamp": bad_timestamp.map(
        lambda v: lambda m: m.update(timestamp=v)),
    "id not an integer": (not_an_int.filter(lambda v: v is not None)
                          | st.text(max_size=5)).map(
        lambda v: lambda m: _data(m).update(id=v)),
    "id out of range": (st.integers(max_value=0)
                        | st.integers(min_value=2 ** 31)).map(
        lambda v: lambda m: _data(m).update(id=v)),
    "null id on an end event": st.just(
        lambda m: _data(m).update(id=None)),
    "hosts not a list": not_a_dict.filter(
        lambda v: v is not None and not isinstance(v, list)).map(
        lambda v: lambda m: _data(m).update(hosts=v)),
    "host not a name": st.lists(not_a_string | st.just(""), min_size=1,
                                max_size=3).map(
        lambda v: lambda m: _data(m).update(hosts=v)),
    "field missing": st.sampled_from(["id", "uuid", "name", "hosts",
                                      "metadata"]).map(
        lambda k: lambda m: _data(m).pop(k)),
    "data not an object": not_a_dict.map(
        lambda v: lambda m: m["payload"].update({"nova_object.data": v})),
    "other payload class": st.text(max_size=20).filter(
        lambda s: s != "AggregatePayload").map(
        lambda v: lambda m: m["payload"].update({"nova_object.name": v})),
    "other major version": st.integers(min_value=2, max_value=99).map(
        lambda v: lambda m: m["payload"].update(
            {"nova_object.version": "%d.0" % v})),
    "version not MAJOR.MINOR": (not_a_string | st.text(max_size=8).filter(
        lambda s: not re.match(r"^\d+\.\d+$", s))).map(
        lambda v: lambda m: m["payload"].update({"nova_object.version": v})),
    "name not a string": (not_a_string | st.just("")
                          | st.just("n" * 256)).map(
        lambda v: lambda m: _data(m).update(name=v)),
    "metadata value not a string": st.dictionaries(
        st.text(min_size=1, max_size=8), not_a_string, min_size=1,
        max_size=3).map(lambda v: lambda m: _data(m).update(metadata=v)),
    "priority not a string": (st.none() | st.integers()
                              | st.lists(st.text(max_size=3), max_size=2)).map(
        lambda v: lambda m: m.update(priority=v)),
    "message_id not usable": (not_a_string | st.just("")).map(
        lambda v: lambda m: m.update(message_id=v)),
}

LEGACY_MUTATIONS = {
    "legacy publisher not aggregate.<id>": st.text(max_size=20).filter(
        lambda s: not s.startswith("aggregate.")).map(
        lambda v: lambda m: m.update(publisher_id=v)),
    "legacy id not a number": st.text(max_size=8).filter(
        lambda s: not re.match(r"^[0-9]{1,10}$", s)).map(
        lambda v: lambda m: m["payload"].update(aggregate_id=v)),
    "legacy host_name missing": st.just(
        lambda m: m["payload"].pop("host_name")),
    "legacy host_name not a string": not_a_string.map(
        lambda v: lambda m: m["payload"].update(host_name=v)),
}


@st.composite
def malformed(draw, serial):
    """(kind, message) with one rule of Nova's format broken."""
    n = next(serial)
    agg_id = BAD_AGGREGATE_BASE + n
    kinds = sorted(MUTATIONS) + sorted(LEGACY_MUTATIONS)
    kind = draw(st.sampled_from(kinds))
    if kind in LEGACY_MUTATIONS:
        message = legacy("bad-%d" % n, n, agg_id, "hx")
        draw(LEGACY_MUTATIONS[kind])(message)
    else:
        message = versioned("bad-%d" % n, n, agg_id, "add_host", "bad",
                            ["hx"], {FLAG: "1"})
        draw(MUTATIONS[kind])(message)
    return kind, message


# ---------------------------------------------------------------------------
# In-process bulk: 10,000 malformed messages through the dispatcher
# ---------------------------------------------------------------------------

class _Incoming:
    """What oslo's listener hands the dispatcher."""

    def __init__(self, message):
        self.message = message
        self.ctxt = {"request_id": "req-fuzz"}


class _Run:
    """Feeds the dispatcher in listener-sized batches, valid ones mixed in."""

    def __init__(self):
        import random
        self.rng = random.Random(20261101)
        self.serial = itertools.count(1)
        self.pending = []
        self.bad = 0
        self.kinds = {}
        self.valid = {}
        self.valid_queue = []
        self.next_agg = 1
        self.requeued = 0
        self.sleeps = []
        self.endpoint = intake.AggregateEndpoint(
            requeue_delay=0.0, sleep=self.sleeps.append)
        self.dispatcher = intake.IntakeDispatcher(self.endpoint)

    def add_bad(self, kind, message):
        self.bad += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.pending.append(message)
        # a batch as the listener would hand it over (batch_size default)
        if len(self.pending) >= 48:
            self.flush()

    def _next_valid(self):
        if not self.valid_queue:
            agg_id = self.next_agg
            self.next_agg += 1
            good, expected = valid_stream(agg_id, 10 ** 7 + agg_id * 10)
            self.valid[agg_id] = (expected, [m["message_id"] for m in good])
            self.valid_queue = list(good)
        return self.valid_queue.pop(0)

    def flush(self):
        batch = list(self.pending)
        # Valid ones keep their relative order (Nova's), anywhere in the batch.
        first, second = sorted(self.rng.randint(0, len(batch))
                               for _ in range(2))
        batch.insert(first, self._next_valid())
        batch.insert(second + 1, self._next_valid())
        self.pending = []
        requeue = self.dispatcher.dispatch([_Incoming(m) for m in batch])
        self.requeued += len(requeue)

    def finish(self):
        self.flush()
        while self.valid_queue:
            self.pending.append(self._next_valid())
            self.flush()


BULK_MALFORMED = 10000


@pytest.fixture(params=["mysql", "sqlite"])
def fuzz_db(request, tmp_path):
    """MariaDB (the claim is about MySQL), and SQLite on tmpfs (fast)."""
    if request.param == "mysql":
        request.getfixturevalue("mysql_url")
        yield
        return
    import pathlib
    import tempfile
    base = pathlib.Path("/dev/shm") if pathlib.Path("/dev/shm").is_dir() \
        else tmp_path
    with tempfile.TemporaryDirectory(dir=base) as where:
        db_api.configure_url("sqlite:///%s/fuzz.db" % where)
        migration.upgrade()
        yield
        db_api.dispose()


def test_ten_thousand_malformed_notifications_among_valid_ones(fuzz_db):
    run = _Run()

    # NOTE(phases): the assertions are on totals after all examples, so
    # there is nothing to shrink; generating only keeps this to seconds.
    @settings(max_examples=BULK_MALFORMED, deadline=None, database=None,
              phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=malformed(run.serial))
    def deliver(case):
        run.add_bad(*case)

    deliver()
    run.finish()
    assert run.bad >= BULK_MALFORMED
    # Every way of breaking a message was exercised (hypothesis does not
    # repeat the few that have a single form, like "field missing").
    assert len(run.kinds) == len(MUTATIONS) + len(LEGACY_MUTATIONS)
    assert run.requeued == 0, "a message was requeued"
    assert run.sleeps == [], "the endpoint paused as for a database outage"
    counts = _outcomes()
    assert counts.get(db_api.REJECTED, 0) == run.bad, counts
    stored = {r["message_id"]: r["outcome"] for r in
              db_api.list_notifications(limit=10 ** 6)}
    for agg_id, (expected, message_ids) in run.valid.items():
        assert support.desired(agg_id) == expected
        for message_id in message_ids:
            # Each of them changes its aggregate, in Nova's order.
            assert stored[message_id] == db_api.APPLIED
    # Nothing a malformed message said reached desired state.
    assert all(a["id"] < BAD_AGGREGATE_BASE for a in db_api.list_aggregates())


def _outcomes():
    result = {}
    for (_, outcome), n in db_api.notification_counts().items():
        result[outcome] = result.get(outcome, 0) + n
    return result


# ---------------------------------------------------------------------------
# Over real RabbitMQ through the daemon: raw bodies of every layer
# ---------------------------------------------------------------------------

WIRE_MALFORMED = 600
WIRE_GARBAGE = 120
WIRE_AGGREGATES = 20

garbage_bodies = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).filter(lambda s: not s.strip().startswith(("{",
                                                                    "["))),
    json_any.map(json.dumps),
    st.fixed_dictionaries({"oslo.version": st.text(max_size=5).filter(
        lambda v: v != "2.0"), "oslo.message": st.just("{}")}).map(
        json.dumps),
    st.fixed_dictionaries({"oslo.version": st.just("2.0"),
                           "oslo.message": st.text(max_size=30).filter(
                               lambda s: not s.startswith("{"))}).map(
        json.dumps),
    st.fixed_dictionaries({"oslo.version": st.just("2.0"),
                           "oslo.message": not_a_string}).map(json.dumps),
)


def _examples(strategy, count):
    """``count`` varied draws of ``strategy`` (a fuzz corpus)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore",
                              hyp_errors.NonInteractiveExampleWarning)
        return [strategy.example() for _ in range(count)]


def _envelope(message):
    return json.dumps({"oslo.version": "2.0",
                       "oslo.message": json.dumps(message)})


@pytest.fixture
def bus(rabbit_url):
    bus = support.Bus(rabbit_url)
    yield bus
    bus.cleanup()


def test_malformed_bodies_over_rabbitmq_drain_and_are_counted(
        bus, mysql_url, tmp_path):
    daemon = support.Daemon(tmp_path, bus, mysql_url, debug=False,
                            requeue_delay=0.5)
    daemon.start()
    try:
        serial = itertools.count(1)
        bad = _examples(malformed(serial), WIRE_MALFORMED)
        garbage = _examples(garbage_bodies, WIRE_GARBAGE)
        bodies = [_envelope(m) for _, m in bad] + list(garbage)
        expected = {}
        for agg_id in range(1, WIRE_AGGREGATES + 1):
            good, expected[agg_id] = valid_stream(agg_id, 10 ** 6 + agg_id)
            bodies += [_envelope(m) for m in good]
        import random
        random.Random(7).shuffle(bodies)
        _publish_all(bus, bodies)
        valid_count = 4 * WIRE_AGGREGATES
        try:
            support.recorded(valid_count + WIRE_MALFORMED)
        except AssertionError:
            raise AssertionError("outcomes %s, queue depth %s, log:\n%s" % (
                _outcomes(), bus.queue_depth(), daemon.log_text()[-4000:]))
        support.wait_for(lambda: _drained(bus), timeout=60,
                         what="the queue to drain")
        assert daemon.proc.poll() is None, daemon.log_text()[-3000:]
        counts = _outcomes()
        assert counts.get(db_api.REJECTED, 0) == WIRE_MALFORMED, counts
        for agg_id, state in expected.items():
            assert support.desired(agg_id) == state
        log = daemon.log_text()
        assert "requeueing" not in log
        assert "Callback raised" not in log
        # NOTE(driver): a body that is not JSON never reaches poolmgr: the
        # rabbit driver logs it with its traceback and drops it. No
        # traceback may come from anywhere else, nor pass through poolmgr.
        tracebacks = [line for line in log.splitlines()
                      if "Traceback" in line]
        assert all("oslo.messaging._drivers.impl_rabbit" in line
                   for line in tracebacks), tracebacks
        assert 'File "%s' % os.path.dirname(intake.__file__) \
            not in log
    finally:
        daemon.kill()


def _publish_all(bus, bodies):
    import kombu
    with kombu.Connection(support.amqp_url(bus.rabbit_url)) as conn:
        producer = conn.Producer()
        exchange = kombu.Exchange(bus.exchange, type="topic", durable=True)
        for body in bodies:
            producer.publish(body, exchange=exchange,
                             routing_key="%s.info" % bus.versioned_topic,
                             content_type="application/json",
                             content_encoding="utf-8", declare=[])


def _drained(bus):
    import kombu
    with kombu.Connection(support.amqp_url(bus.rabbit_url)) as conn:
        _, ready, consumers = conn.default_channel.queue_declare(
            bus.pool, passive=True)
    # NOTE(unacked): queue_declare counts ready messages only; unacked ones
    # show up again as ready if the consumer dies, so wait a moment and ask
    # twice.
    return ready == 0 and consumers >= 1


# ---------------------------------------------------------------------------
# Found by the fuzzer over MySQL (regressions)
# ---------------------------------------------------------------------------

def test_text_outside_the_bmp_is_stored_in_the_notification_log(mysql_url):
    # A publisher id with a 4-byte UTF-8 character: the tables are utf8mb4,
    # and so must be the connection (oslo.db defaults it to 3-byte utf8).
    publisher = "nova-api:\U0001F600\U000b1b59"
    assert db_api.record_rejected("m-emoji", "aggregate.bogus.end",
                                  publisher, "reason \U0001F600") == \
        db_api.REJECTED
    row = db_api.list_notifications(limit=1)[0]
    assert row["publisher_id"] == publisher


def test_data_the_database_refuses_is_never_requeued():
    # PyMySQL raises DataError for 1366 and oslo.db wraps it as a plain
    # DBError: permanent, not "database unavailable".
    from oslo_db import exception as db_exc
    from sqlalchemy import exc as sa_exc

    def refuse(*args):
        inner = sa_exc.DataError("INSERT", {}, Exception(1366, "Incorrect"))
        raise db_exc.DBError(inner)

    sleeps = []
    endpoint = intake.AggregateEndpoint(
        requeue_delay=1.0, record_event=refuse, record_events=refuse,
        record_rejected=refuse, sleep=sleeps.append)
    message = versioned("m-1", 1, 5, "add_host", "p", ["h"], {FLAG: "1"})
    message["metadata"] = {"message_id": "m-1",
                           "timestamp": message["timestamp"]}
    assert endpoint.info([message]) == intake.HANDLED
    bad = dict(message, payload=[1])
    assert endpoint.info([bad]) == intake.HANDLED
    assert sleeps == []


# ---------------------------------------------------------------------------
# The batch's SQL text on MySQL (db.sqltext NOTE(sql-text))
# ---------------------------------------------------------------------------

_AWKWARD = ["it's", 'say "hi"', "back\\slash", "nul\x00byte", "new\nline",
            "cr\rlf", "ctrl-z\x1a", "100%", "%s %(name)s", "\U0001F600",
            "é\\'\"%", "", " ", "\\", "'", "a\\'b", "--", "?"]


@given(st.text(alphabet=st.sampled_from(list("ab%\\'\"\x00\n\r\x1a é"))))
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_sql_text_escapes_as_pymysql_does(value):
    from pymysql import converters
    from poolmgr.db import eventlog
    text = object.__new__(eventlog._SQLText)
    text.quote_only = False
    assert text.string(value) == "'%s'" % converters.escape_string(value)
    text.quote_only = True
    assert text.string(value) == "'%s'" % value.replace("'", "''")


@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_awkward_text_survives_the_batch_path(mysql_url, sql_mode):
    import sqlalchemy as sa
    from poolmgr import events
    from poolmgr.db import session as db_session

    @sa.event.listens_for(db_session.get_engine(), "connect")
    def set_mode(dbapi_connection, record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, %s)",
                           ("," + sql_mode if sql_mode else "",))
    db_session.get_engine().dispose()
    batch = []
    for n, word in enumerate(_AWKWARD):
        batch.append(events.AggregateEvent(
            message_id="m-%d-%s" % (n, word), event_type="aggregate.%s" % word,
            publisher_id="p-" + word, timestamp=T0.replace(microsecond=n),
            kind=events.UPDATE_METADATA, phase=events.END, versioned=True,
            aggregate_id=77, uuid="u'%d" % n, name="n-" + word,
            hosts=tuple("h-%d-%s" % (i, w) for i, w in enumerate(_AWKWARD)),
            metadata={FLAG: "1", "k-" + word: "v-" + word}))
    assert db_api.record_events(batch) == [db_api.APPLIED] * len(batch)
    # A redelivery of all of them: the SELECT of seen ids matches each.
    assert db_api.record_events(batch) == [db_api.DUPLICATE] * len(batch)
    rows = {r["message_id"]: r for r in db_api.list_notifications(limit=100)}
    for event in batch:
        row = rows[event.message_id]
        assert (row["event_type"], row["publisher_id"], row["event_time"]) \
            == (event.event_type, event.publisher_id, event.timestamp)
    agg = db_api.get_aggregate(77)
    last = batch[-1]
    assert (agg["name"], agg["uuid"]) == (last.name, batch[0].uuid)
    assert agg["hosts"] == list(last.hosts)
    assert agg["metadata"] == last.metadata
    counts = db_api.notification_counts()
    assert counts[(batch[1].event_type, db_api.APPLIED)] == 1
    from poolmgr.db import eventlog
    with db_session.get_engine().connect() as connection:
        mode = connection.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar()
        # The rows read as text are the rows SQLAlchemy reads.
        as_text = eventlog._load_mirrors(
            connection, [77], eventlog._SQLText(connection))
        as_core = eventlog._load_mirrors(connection, [77])
        assert as_text[77].row() == as_core[77].row()
        assert type(as_text[77].deleted) is bool
    assert ("NO_BACKSLASH_ESCAPES" in mode) == bool(sql_mode)


def _fakenova_stream(count, rng):
    """FakeNova's legacy + versioned stream as the dispatcher hands it."""
    import uuid

    from poolmgr.simulator import fakenova

    nova = fakenova.FakeNova(None, first_id=rng.randint(1000, 10 ** 6))
    n = 0
    while len(nova.sent) < count:
        agg = nova.create_aggregate("eq-%04d" % n)
        nova.set_metadata(agg, {FLAG: "true", "k'%d" % n: "v\\%d" % n})
        for h in range(3):
            nova.add_host(agg, "cmp-%04d-%d" % (n, h))
        if n % 3 == 0:
            nova.remove_host(agg, "cmp-%04d-1" % n)
        n += 1
    return [{"ctxt": {"request_id": "req-%d" % i},
             "publisher_id": publisher, "event_type": event_type,
             "payload": payload,
             "metadata": {"message_id": str(uuid.UUID(int=rng.getrandbits(
                 128))), "timestamp": str(T0 + datetime.timedelta(
                     microseconds=i * 37))}}
            for i, (_, event_type, publisher, payload)
            in enumerate(nova.sent)]


def test_sql_text_and_core_paths_end_in_the_same_state(mysql_url, tmp_path):
    import random

    import sqlalchemy as sa
    rng = random.Random(20261201)
    messages = _fakenova_stream(1200, rng)
    batches = [messages[i:i + 200] for i in range(0, len(messages), 200)]
    for batch in batches[::2]:
        rng.shuffle(batch)

    def run():
        from poolmgr.db import models
        endpoint = intake.AggregateEndpoint(counter_interval=3600)
        for batch in batches:
            assert endpoint.process_batch(batch) == intake.HANDLED
            # Redeliveries, and stale copies of the batch before.
            assert endpoint.process_batch(batch[:30]) == \
                intake.HANDLED
        state = {}
        with db_api.get_engine().connect() as connection:
            for model, skip in [
                    (models.Aggregate, ("created_at", "updated_at")),
                    (models.Notification, ("id", "received_at")),
                    (models.Counter, ()),
                    (models.Pool, ("created_at", "updated_at", "due_at"))]:
                table = model.__table__
                columns = [c for c in table.columns if c.name not in skip]
                state[table.name] = sorted(
                    (tuple(r) for r in connection.execute(
                        sa.select(*columns))), key=repr)
        return state

    on_mysql = run()
    db_api.configure_url("sqlite:///%s" % (tmp_path / "core.db"))
    migration.upgrade()
    try:
        on_sqlite = run()
    finally:
        db_api.dispose()
    assert len(on_mysql["notifications"]) == len(
        {m["metadata"]["message_id"] for m in messages})
    for table in on_mysql:
        assert on_mysql[table] == on_sqlite[table], table


def test_a_long_batch_is_sent_in_several_statements(mysql_url, monkeypatch):
    from poolmgr import events
    from poolmgr.db import sqltext
    monkeypatch.setattr(sqltext, "_MAX_STATEMENT", 300)
    batch = [events.AggregateEvent(
        message_id="long-%d" % n, event_type="aggregate.add_host.end",
        publisher_id="nova-api:x", timestamp=T0.replace(microsecond=n),
        kind=events.ADD_HOST, phase=events.END, versioned=False,
        aggregate_id=100 + n % 7, host="h-%d" % n) for n in range(60)]
    assert db_api.record_events(batch) == [db_api.APPLIED] * 60
    assert len(db_api.list_notifications(limit=100)) == 60
    assert db_api.notification_counts()[
        ("aggregate.add_host.end", db_api.APPLIED)] == 60
    assert sorted(db_api.get_aggregate(100)["hosts"]) == sorted(
        "h-%d" % n for n in range(0, 60, 7))
