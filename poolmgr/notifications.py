"""Nova aggregate notifications: strict parsing and the intake endpoint.

Two formats arrive (nova.md section 11): legacy ``aggregate.addhost.end``
with a delta payload and publisher ``aggregate.<id>``, and versioned
``aggregate.add_host.end`` whose ``AggregatePayload`` carries the whole
aggregate. Both become one :class:`poolmgr.events.AggregateEvent`.

Anything that does not match what Nova sends is a poison message: it is
logged with its message_id, stored as rejected and acked, because
requeueing it would only bring it back forever. Only a database that
cannot be reached leads to a requeue, after a pause.

Everything else Nova publishes on the same topics (``instance.*``,
``compute.*``, ``service.*``: nearly all of the stream) is decided on its
event type alone, before anything else of it is read, counted and acked
(:class:`IntakeDispatcher`).
"""

import datetime
import hashlib
import json
import re
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import oslo_messaging
from oslo_messaging.notify import dispatcher as notify_dispatcher
from oslo_messaging.notify import listener as notify_listener
from sqlalchemy import exc as sa_exc

from poolmgr.db import api as db_api
from poolmgr import events

LOG = logging.getLogger(__name__)

HANDLED = oslo_messaging.NotificationResult.HANDLED
REQUEUE = oslo_messaging.NotificationResult.REQUEUE

# Outcome of a message that never reaches the database (not ours to store).
SKIPPED = "skipped"
# What the parser makes of a valid notification poolmgr has no use for.
_IGNORED = object()

_LEGACY_KINDS = {
    "create": events.CREATE,
    "delete": events.DELETE,
    "addhost": events.ADD_HOST,
    "removehost": events.REMOVE_HOST,
    "updatemetadata": events.UPDATE_METADATA,
    "updateprop": events.UPDATE_PROP,
}
_VERSIONED_KINDS = {kind: kind for kind in events.KINDS}
# NOTE(cache_images): versioned-only notifications about image
# pre-caching; valid Nova traffic that says nothing about membership.
_VERSIONED_IGNORED = {"cache_images"}
_PHASES = (events.START, events.END)

AGGREGATE_PREFIX = "aggregate."
# Event types a rejected message's counter may be filed under; anything
# else is "other", so junk cannot create counters without bound.
_KNOWN_EVENT_TYPES = frozenset(
    "aggregate.%s.%s" % (action, phase)
    for action in (set(_LEGACY_KINDS) | set(_VERSIONED_KINDS)
                   | _VERSIONED_IGNORED)
    for phase in _PHASES + ("progress",))
OTHER_EVENT_TYPE = "other"

_PAYLOAD_NAME = "AggregatePayload"
_PAYLOAD_MAJOR = 1

# Column sizes of the tables the event lands in, and Nova's own limits.
_MAX_ID = 2 ** 31 - 1
_MAX_NAME = 255
_MAX_MESSAGE_ID = 64
_MAX_UUID = 36

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")
_DIGITS = re.compile(r"^[0-9]{1,10}$")


class InvalidNotification(ValueError):
    """The message is not an aggregate notification Nova could have sent."""


# ---------------------------------------------------------------------------
# Field checks
# ---------------------------------------------------------------------------

def _string(value, what, max_len=_MAX_NAME, allow_empty=False):
    if not isinstance(value, str):
        raise InvalidNotification("%s must be a string, not %s"
                                  % (what, type(value).__name__))
    if not value and not allow_empty:
        raise InvalidNotification("%s is empty" % what)
    if len(value) > max_len:
        raise InvalidNotification("%s is longer than %d characters"
                                  % (what, max_len))
    if "\x00" in value:
        raise InvalidNotification("%s contains a NUL character" % what)
    return value


def _aggregate_id(value, what="aggregate id", allow_string=False):
    # NOTE(types): bool is an int in Python; Nova never sends one as an id.
    if isinstance(value, bool):
        raise InvalidNotification("%s must be an integer, not bool" % what)
    if isinstance(value, str) and allow_string:
        # NOTE(legacy-id): delete/addhost/removehost pass the id straight
        # from the REST URL, so it arrives as "1"; only plain digits count.
        if not _DIGITS.match(value):
            raise InvalidNotification("%s %r is not a number" % (what, value))
        value = int(value)
    if not isinstance(value, int):
        raise InvalidNotification("%s must be an integer, not %s"
                                  % (what, type(value).__name__))
    if not 1 <= value <= _MAX_ID:
        raise InvalidNotification("%s %d is out of range" % (what, value))
    return value


def _host_list(value):
    if not isinstance(value, list):
        raise InvalidNotification("hosts must be a list, not %s"
                                  % type(value).__name__)
    hosts = tuple(_string(h, "host name") for h in value)
    if len(set(hosts)) != len(hosts):
        raise InvalidNotification("hosts lists a host twice")
    return hosts


def _metadata(value, what, allow_null_values=False):
    if not isinstance(value, dict):
        raise InvalidNotification("%s must be an object, not %s"
                                  % (what, type(value).__name__))
    result = {}
    for key, item in value.items():
        _string(key, "%s key" % what)
        if item is None and allow_null_values:
            result[key] = None
        else:
            result[key] = _string(item, "%s value of %r" % (what, key),
                                  allow_empty=True)
    return result


def parse_timestamp(value):
    """Nova's ``str(utcnow())``: naive UTC, microseconds optional."""
    if not isinstance(value, str):
        raise InvalidNotification("timestamp must be a string")
    match = _TIMESTAMP.match(value)
    if match is None:
        raise InvalidNotification("timestamp %r is not YYYY-MM-DD HH:MM:SS"
                                  % value[:64])
    parts = [int(p) for p in match.groups()[:6]]
    micro = int((match.group(7) or "0").ljust(6, "0"))
    try:
        return datetime.datetime(*parts, microsecond=micro)
    except ValueError as exc:
        raise InvalidNotification("timestamp %r: %s" % (value, exc)) from None


def _split_event_type(event_type):
    _string(event_type, "event_type")
    parts = event_type.split(".")
    if len(parts) != 3 or parts[0] != "aggregate":
        raise InvalidNotification("unknown event type %r" % event_type[:255])
    return parts[1], parts[2]


def _is_versioned(payload):
    return any(isinstance(k, str) and k.startswith("nova_object.")
               for k in payload)


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

def parse_notification(publisher_id, event_type, payload, metadata,
                       ctxt=None):
    """Turn one notification into an AggregateEvent.

    Returns None for valid notifications poolmgr has no use for
    (``aggregate.cache_images.*``). Raises InvalidNotification for
    everything Nova would not send.
    """
    if not isinstance(metadata, dict):
        raise InvalidNotification("message metadata is missing")
    message_id = _string(metadata.get("message_id"), "message_id",
                         max_len=_MAX_MESSAGE_ID)
    timestamp = parse_timestamp(metadata.get("timestamp"))
    publisher_id = _string(publisher_id, "publisher_id")
    action, phase = _split_event_type(event_type)
    if not isinstance(payload, dict):
        raise InvalidNotification("payload must be an object, not %s"
                                  % type(payload).__name__)
    common = dict(message_id=message_id, event_type=event_type,
                  publisher_id=publisher_id, timestamp=timestamp,
                  request_id=_request_id(ctxt))
    if _is_versioned(payload):
        return _parse_versioned(action, phase, payload, common)
    return _parse_legacy(action, phase, payload, common)


def _request_id(ctxt):
    if isinstance(ctxt, dict):
        value = ctxt.get("request_id")
        if isinstance(value, str) and len(value) <= _MAX_NAME:
            return value
    return None


def _parse_versioned(action, phase, payload, common):
    if action in _VERSIONED_IGNORED:
        return None
    if action not in _VERSIONED_KINDS:
        raise InvalidNotification("unknown versioned action %r" % action)
    if phase not in _PHASES:
        raise InvalidNotification("unknown phase %r" % phase)
    name = payload.get("nova_object.name")
    if name != _PAYLOAD_NAME:
        raise InvalidNotification("payload is %r, not %s"
                                  % (str(name)[:64], _PAYLOAD_NAME))
    if payload.get("nova_object.namespace") != "nova":
        raise InvalidNotification("payload namespace is not nova")
    version = payload.get("nova_object.version")
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+$", version):
        raise InvalidNotification("payload version %r is not MAJOR.MINOR"
                                  % str(version)[:16])
    # NOTE(versions): Nova only adds fields in a minor bump, so any 1.x
    # reads like 1.1; a new major version could change meaning and is
    # refused until poolmgr learns it.
    if int(version.split(".")[0]) != _PAYLOAD_MAJOR:
        raise InvalidNotification("AggregatePayload version %s is not 1.x"
                                  % version)
    data = payload.get("nova_object.data")
    if not isinstance(data, dict):
        raise InvalidNotification("nova_object.data must be an object")
    kind = _VERSIONED_KINDS[action]
    for field in ("id", "uuid", "name", "hosts", "metadata"):
        if field not in data:
            raise InvalidNotification("payload lacks %s" % field)
    if data["id"] is None:
        # NOTE(create-start): AggregatePayload 1.1 made id nullable for
        # create.start only, which is sent before the row exists.
        if (kind, phase) != (events.CREATE, events.START):
            raise InvalidNotification("aggregate id is null on %s.%s"
                                      % (action, phase))
        aggregate_id = None
    else:
        aggregate_id = _aggregate_id(data["id"])
    hosts = None if data["hosts"] is None else _host_list(data["hosts"])
    metadata = (None if data["metadata"] is None
                else _metadata(data["metadata"], "metadata"))
    return events.AggregateEvent(
        kind=kind, phase=phase, versioned=True, aggregate_id=aggregate_id,
        uuid=_string(data["uuid"], "uuid", max_len=_MAX_UUID),
        name=_string(data["name"], "name"), hosts=hosts, metadata=metadata,
        **common)


def _parse_legacy(action, phase, payload, common):
    if action not in _LEGACY_KINDS:
        raise InvalidNotification("unknown legacy action %r" % action)
    if phase not in _PHASES:
        raise InvalidNotification("unknown phase %r" % phase)
    kind = _LEGACY_KINDS[action]
    if not common["publisher_id"].startswith("aggregate."):
        raise InvalidNotification("legacy publisher_id %r is not "
                                  "aggregate.<id>" % common["publisher_id"])
    fields = {}
    if "aggregate_id" in payload:
        fields["aggregate_id"] = _aggregate_id(payload["aggregate_id"],
                                               allow_string=True)
    elif (kind, phase) != (events.CREATE, events.START):
        raise InvalidNotification("payload lacks aggregate_id")
    if kind == events.CREATE or "name" in payload:
        if "name" not in payload:
            raise InvalidNotification("payload lacks name")
        fields["name"] = _string(payload["name"], "name")
    if "uuid" in payload:
        fields["uuid"] = _string(payload["uuid"], "uuid", max_len=_MAX_UUID)
    if kind in (events.ADD_HOST, events.REMOVE_HOST):
        if "host_name" not in payload:
            raise InvalidNotification("payload lacks host_name")
        fields["host"] = _string(payload["host_name"], "host_name")
    if kind == events.UPDATE_METADATA and "meta_data" not in payload:
        raise InvalidNotification("payload lacks meta_data")
    if "meta_data" in payload and kind in (events.CREATE,
                                           events.UPDATE_METADATA,
                                           events.UPDATE_PROP):
        # NOTE(delta): legacy metadata is the changed keys only, and a
        # null value means the key was deleted.
        fields["metadata_delta"] = _metadata(payload["meta_data"],
                                             "meta_data",
                                             allow_null_values=True)
    return events.AggregateEvent(kind=kind, phase=phase, versioned=False,
                                 **fields, **common)


# ---------------------------------------------------------------------------
# The endpoint
# ---------------------------------------------------------------------------

# NOTE(transient): only a database that cannot answer now is worth a
# retry; data and constraint errors would fail the same way forever.
_PERMANENT_DB_ERRORS = (db_exc.DBDataError, db_exc.DBReferenceError,
                        db_exc.DBInvalidUnicodeParameter,
                        db_exc.DBDuplicateEntry)


# MySQL "table doesn't exist": oslo.db re-raises it unwrapped.
_MYSQL_NO_SUCH_TABLE = 1146


def _is_transient(exc):
    if isinstance(exc, _PERMANENT_DB_ERRORS):
        return False
    if isinstance(exc, db_exc.DBError):
        # NOTE(data-error): PyMySQL raises DataError for MySQL 1366
        # (incorrect string value) and oslo.db passes it on as a plain
        # DBError; retrying it would requeue the message forever.
        return not isinstance(getattr(exc, "inner_exception", None),
                              (sa_exc.DataError, sa_exc.IntegrityError))
    # NOTE(driver-errors): errors raised outside oslo.db's filters (the
    # engine cannot be built, a socket dies) mean the same thing. A missing
    # table means `poolmgr-manage db sync` has not run yet: wait for it
    # rather than drop what Nova sent.
    if isinstance(exc, sa_exc.ProgrammingError):
        args = getattr(exc.orig, "args", ())
        return bool(args) and args[0] == _MYSQL_NO_SUCH_TABLE
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError,
                            sa_exc.TimeoutError, ConnectionError))


def _describe(value, size=255):
    """A short printable form of something untrusted, for log lines."""
    if isinstance(value, str):
        return value[:size]
    return None if value is None else repr(value)[:size]


def counter_label(event_type):
    """The event type a rejected message is counted under."""
    return event_type if event_type in _KNOWN_EVENT_TYPES \
        else OTHER_EVENT_TYPE


def message_fingerprint(*parts):
    """A short digest of a message's content, for a made-up message id.

    A redelivery carries the same content, hence the same digest; two
    different messages, even of the same instant, do not.
    """
    try:
        text = json.dumps(parts, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        text = repr(parts)
    return hashlib.blake2b(text.encode("utf-8", "replace"),
                           digest_size=16).hexdigest()


class AggregateEndpoint:
    """Receives ``aggregate.*`` INFO notifications, legacy and versioned.

    Used with a batch listener: ``info`` gets a list of messages and stores
    the valid ones in one transaction. It never raises: the oslo dispatcher
    would turn an exception into a requeue of the whole batch, and a
    message that failed once fails again.
    """

    filter_rule = oslo_messaging.NotificationFilter(
        event_type=r"^aggregate\.")

    def __init__(self, requeue_delay=2.0, record_event=None,
                 record_events=None, record_rejected=None, sleep=time.sleep,
                 count_skipped=None, counter_interval=1.0):
        self.requeue_delay = requeue_delay
        self._record_event = record_event or db_api.record_event
        self._record_events = record_events or db_api.record_events
        self._record_rejected = record_rejected or db_api.record_rejected
        self._count_skipped = count_skipped or db_api.count_skipped
        self._sleep = sleep
        self.counter_interval = counter_interval
        self._skipped = 0
        self._skipped_lock = threading.Lock()
        self._flush_timer = None

    def skip(self, count):
        """Count messages let go unstored; written at most once a second.

        NOTE(skip-counter): a transaction per batch of instance traffic
        would cost more than the messages themselves; a counter held here
        for at most ``counter_interval`` loses at most that much counting
        if the worker is killed.
        """
        self._add_skipped(count)

    def flush_counters(self):
        """Write the skipped count now (also on shutdown)."""
        with self._skipped_lock:
            count, self._skipped = self._skipped, 0
            timer, self._flush_timer = self._flush_timer, None
        if timer is not None:
            timer.cancel()
        if not count:
            return
        try:
            self._count_skipped(count)
        except Exception as exc:  # noqa: BLE001 - see _is_transient
            if not _is_transient(exc):
                LOG.warning("Could not count %d skipped messages: %s",
                            count, type(exc).__name__)
                return
            LOG.debug("Database unavailable; %d skipped messages counted "
                      "later", count)
            # NOTE(recount): back into the pending count, not through
            # skip(): these messages were counted as seen once already.
            self._add_skipped(count)

    def _add_skipped(self, count):
        with self._skipped_lock:
            self._skipped += count
            if self._flush_timer is None:
                self._flush_timer = threading.Timer(self.counter_interval,
                                                    self.flush_counters)
                self._flush_timer.daemon = True
                self._flush_timer.start()

    def info(self, messages):
        """Batch entry point: HANDLED, or REQUEUE for the whole batch."""
        return self.process_batch(messages)

    def process_batch(self, messages):
        parsed, ignored = [], 0
        for message in messages:
            event = self._parse(message.get("ctxt"),
                                message.get("publisher_id"),
                                message.get("event_type"),
                                message.get("payload"),
                                message.get("metadata"))
            if event is REQUEUE:
                return REQUEUE
            if event is _IGNORED:
                ignored += 1
            elif event is not None:
                parsed.append(event)
        if ignored:
            self.skip(ignored)
        if not parsed:
            return HANDLED
        try:
            outcomes = self._record_events(parsed)
        except Exception as exc:  # noqa: BLE001 - see _is_transient
            if _is_transient(exc):
                result, _ = self._requeue(None, "%d notifications"
                                          % len(parsed), exc)
                return result
            # NOTE(isolate): one event the database refuses must not take
            # the rest of the batch with it; store them one by one.
            LOG.warning("Batch of %d notifications refused (%s); storing "
                        "them one by one", len(parsed), type(exc).__name__)
            for event in parsed:
                result, _ = self._store(event)
                if result == REQUEUE:
                    return REQUEUE
            return HANDLED
        for event, outcome in zip(parsed, outcomes):
            LOG.debug("Notification %s %s for aggregate %s: %s",
                      event.message_id, event.event_type, event.aggregate_id,
                      outcome)
        return HANDLED

    def process(self, ctxt, publisher_id, event_type, payload, metadata):
        """Handle one message; return (HANDLED|REQUEUE, outcome)."""
        event = self._parse(ctxt, publisher_id, event_type, payload,
                            metadata)
        if event is REQUEUE:
            return REQUEUE, "requeued"
        if event is _IGNORED:
            self.skip(1)
            return HANDLED, SKIPPED
        if event is None:
            return HANDLED, db_api.REJECTED
        return self._store(event)

    def _parse(self, ctxt, publisher_id, event_type, payload, metadata):
        """The event; _IGNORED, None (rejected) or REQUEUE otherwise."""
        message_id = (metadata.get("message_id")
                      if isinstance(metadata, dict) else None)
        try:
            event = parse_notification(publisher_id, event_type, payload,
                                       metadata, ctxt)
        except InvalidNotification as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a parser bug is poison too
            LOG.exception("Parser failed on notification %s",
                          _describe(message_id))
            reason = "parser error: %s" % type(exc).__name__
        else:
            if event is None:
                LOG.debug("Ignoring %s notification %s", event_type,
                          message_id)
                return _IGNORED
            return event
        fingerprint = None
        if not isinstance(message_id, str) or not message_id:
            fingerprint = message_fingerprint(publisher_id, event_type,
                                              payload, metadata)
        result, _ = self.reject(message_id, event_type, publisher_id, reason,
                                fingerprint=fingerprint)
        return REQUEUE if result == REQUEUE else None

    def _store(self, event):
        try:
            outcome = self._record_event(event)
        except Exception as exc:  # noqa: BLE001 - see _is_transient
            if _is_transient(exc):
                return self._requeue(event.message_id, event.event_type, exc)
            LOG.exception("Could not store notification %s (%s)",
                          event.message_id, event.event_type)
            return self.reject(event.message_id, event.event_type,
                               event.publisher_id,
                               "could not be stored: %s" % type(exc).__name__)
        LOG.debug("Notification %s %s for aggregate %s: %s",
                  event.message_id, event.event_type, event.aggregate_id,
                  outcome)
        return HANDLED, outcome

    def reject(self, message_id, event_type, publisher_id, reason,
               fingerprint=None):
        """Log, store as rejected and ack a message that cannot be used."""
        LOG.warning("Rejected notification %s (event_type %s, publisher %s):"
                    " %s", _describe(message_id, 64), _describe(event_type),
                    _describe(publisher_id), reason)
        try:
            self._record_rejected(
                message_id if isinstance(message_id, str) else None,
                _describe(event_type), _describe(publisher_id), reason,
                label=counter_label(event_type), fingerprint=fingerprint)
        except Exception as exc:  # noqa: BLE001
            if _is_transient(exc):
                # NOTE(count): requeue so the rejection is still counted once
                # the database is back; the message fails parsing again then.
                return self._requeue(message_id, event_type, exc)
            LOG.exception("Could not record rejected notification %s",
                          _describe(message_id, 64))
        return HANDLED, db_api.REJECTED

    def _requeue(self, message_id, what, exc):
        # NOTE(code): the driver's error code says which failure it was
        # (2003 refused, 2013 lost, 1049 no database) without its text.
        orig = getattr(getattr(exc, "inner_exception", exc), "orig", None)
        args = getattr(orig, "args", None) or (None,)
        code = args[0] if isinstance(args[0], int) else None
        LOG.warning("Database unavailable (%s%s); requeueing %s %s in %.1fs",
                    type(exc).__name__, "" if code is None else " %d" % code,
                    _describe(what), _describe(message_id, 64) or "",
                    self.requeue_delay)
        # NOTE(requeue): a requeued message goes back to the head of the
        # queue and is redelivered at once; without this pause a database
        # outage would turn the intake into a busy loop.
        self._sleep(self.requeue_delay)
        return REQUEUE, "requeued"


class IntakeDispatcher(notify_dispatcher.BatchNotificationDispatcher):
    """Hands the endpoint its aggregate notifications, one look per message.

    The driver has already decoded each body (the bus's own cost, which a
    no-op listener pays too). oslo's batch dispatcher would then build a
    context, payload and metadata dict for every message, sort them by
    priority and run the endpoint's filter over each; nearly all of Nova's
    stream is not about aggregates. Here the event type decides first: a
    message that is not ``aggregate.*`` is counted and acked without
    anything else of it being read. The rest is extracted once.

    It also keeps oslo's requeue loop away from broken messages: oslo reads
    ``priority`` with ``.lower()`` before any endpoint runs, so a message
    whose priority is null or a number would raise there and requeue the
    whole batch forever. Such an aggregate message is rejected (stored and
    counted), one of another service just skipped.
    """

    def __init__(self, endpoint, serializer=None):
        super().__init__([endpoint], serializer)
        self.endpoint = endpoint

    def dispatch(self, incoming):
        """The messages to requeue (a set); every other one is acked."""
        batch, sources, skipped = [], [], 0
        requeue = set()
        for message in incoming:
            body = message.message
            event_type = body.get("event_type")
            if not (isinstance(event_type, str)
                    and event_type.startswith(AGGREGATE_PREFIX)):
                skipped += 1
                continue
            priority = body.get("priority")
            if not isinstance(priority, str):
                if self._reject(body, "priority %s is not a string"
                                % type(priority).__name__) == REQUEUE:
                    requeue.add(message)
                continue
            if priority.lower() != "info":
                # NOTE(priority): Nova sends aggregate notifications at INFO;
                # its failures come as ERROR under other event types.
                skipped += 1
                continue
            try:
                batch.append(self._extract(message, body, event_type))
            except Exception as exc:  # noqa: BLE001 - a serializer may raise
                if self._reject(body, "undecodable message: %s"
                                % type(exc).__name__) == REQUEUE:
                    requeue.add(message)
                continue
            sources.append(message)
        if skipped:
            self.endpoint.skip(skipped)
        if batch:
            try:
                result = self.endpoint.info(batch)
            except Exception:  # noqa: BLE001 - as oslo's _exec_callback
                LOG.exception("Intake endpoint raised")
                result = REQUEUE
            if result == REQUEUE:
                requeue.update(sources)
        return requeue

    def _extract(self, message, body, event_type):
        ctxt = self.serializer.deserialize_context(message.ctxt)
        return {"ctxt": ctxt, "publisher_id": body.get("publisher_id"),
                "event_type": event_type,
                "payload": self.serializer.deserialize_entity(
                    ctxt, body.get("payload")),
                "metadata": {"message_id": body.get("message_id"),
                             "timestamp": body.get("timestamp")}}

    def _reject(self, body, reason):
        message_id = body.get("message_id")
        LOG.warning("Dropping undecodable message %s (event_type %s): %s",
                    _describe(message_id, 64),
                    _describe(body.get("event_type")), reason)
        fingerprint = None
        if not isinstance(message_id, str) or not message_id:
            fingerprint = message_fingerprint(
                body.get("publisher_id"), body.get("event_type"),
                body.get("payload"), body.get("timestamp"))
        result, _ = self.endpoint.reject(
            message_id, body.get("event_type"), body.get("publisher_id"),
            reason, fingerprint=fingerprint)
        return result


# NOTE(batch): one transaction per batch instead of per message is what
# lets the intake keep up; [notifications] batch_size must fit in the
# prefetch window (rabbit_qos_prefetch_count) or every batch would wait for
# batch_timeout, which bounds the latency of a lone notification.


def build_endpoint(conf):
    return AggregateEndpoint(requeue_delay=conf.notifications.requeue_delay)


def build_listener(transport, conf, endpoint=None):
    """The intake's notification listener, not started.

    One target per configured topic on the configured exchange, all bound
    to the queue named by ``[notifications] pool``.
    """
    if endpoint is None:
        endpoint = build_endpoint(conf)
    targets = [oslo_messaging.Target(topic=topic,
                                     exchange=conf.notifications.exchange)
               for topic in conf.notifications.topics]
    # NOTE(pool): our own queue, so poolmgr never competes with ceilometer
    # or another consumer of notifications.info for the same messages.
    # NOTE(requeue): allow_requeue=True or a REQUEUE during a database
    # outage would silently turn into an ack, i.e. a lost notification.
    # NOTE(executor): oslo.messaging's default executor is threading; the
    # explicit argument is deprecated.
    # NOTE(no-hook): oslo.messaging has no public hook to look at a message
    # before its dispatcher extracts it (NotificationFilter runs after, on
    # every message), and get_batch_notification_listener() takes no
    # dispatcher. So this is the one place that builds the server class
    # that function returns with poolmgr's IntakeDispatcher; it relies only
    # on the dispatcher contract (dispatch(incoming) returns the messages
    # to requeue) and on IncomingMessage.ctxt and .message.
    return notify_listener.BatchNotificationServer(
        transport, targets, IntakeDispatcher(endpoint), allow_requeue=True,
        pool=conf.notifications.pool,
        batch_size=conf.notifications.batch_size,
        batch_timeout=conf.notifications.batch_timeout)
