"""The batch endpoint: parsed aggregate notifications into the database.

Anything that does not match what Nova sends is a poison message: it is
logged with its message_id, stored as rejected and acked, because
requeueing it would only bring it back forever. Only a database that
cannot be reached leads to a requeue, after a pause.
"""

import hashlib
import json
import logging as std_logging
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import oslo_messaging
from sqlalchemy import exc as sa_exc

from poolmgr.db import api as db_api
from poolmgr.intake.parse import counter_label
from poolmgr.intake.parse import InvalidNotification
from poolmgr.intake.parse import parse_notification

LOG = logging.getLogger(__name__)

HANDLED = oslo_messaging.NotificationResult.HANDLED
REQUEUE = oslo_messaging.NotificationResult.REQUEUE

# Outcome of a message that never reaches the database (not ours to store).
SKIPPED = "skipped"
# What the parser makes of a valid notification poolmgr has no use for.
_IGNORED = object()

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


def describe(value, size=255):
    """A short printable form of something untrusted, for log lines."""
    if isinstance(value, str):
        return value[:size]
    return None if value is None else repr(value)[:size]


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
        if LOG.isEnabledFor(std_logging.DEBUG):
            # NOTE(debug): one look per batch; a disabled LOG.debug still
            # costs a call per message.
            for event, outcome in zip(parsed, outcomes):
                LOG.debug("Notification %s %s for aggregate %s: %s",
                          event.message_id, event.event_type,
                          event.aggregate_id, outcome)
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
                          describe(message_id))
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
                    " %s", describe(message_id, 64), describe(event_type),
                    describe(publisher_id), reason)
        try:
            self._record_rejected(
                message_id if isinstance(message_id, str) else None,
                describe(event_type), describe(publisher_id), reason,
                label=counter_label(event_type), fingerprint=fingerprint)
        except Exception as exc:  # noqa: BLE001
            if _is_transient(exc):
                # NOTE(count): requeue so the rejection is still counted once
                # the database is back; the message fails parsing again then.
                return self._requeue(message_id, event_type, exc)
            LOG.exception("Could not record rejected notification %s",
                          describe(message_id, 64))
        return HANDLED, db_api.REJECTED

    def _requeue(self, message_id, what, exc):
        # NOTE(code): the driver's error code says which failure it was
        # (2003 refused, 2013 lost, 1049 no database) without its text.
        orig = getattr(getattr(exc, "inner_exception", exc), "orig", None)
        args = getattr(orig, "args", None) or (None,)
        code = args[0] if isinstance(args[0], int) else None
        LOG.warning("Database unavailable (%s%s); requeueing %s %s in %.1fs",
                    type(exc).__name__, "" if code is None else " %d" % code,
                    describe(what), describe(message_id, 64) or "",
                    self.requeue_delay)
        # NOTE(requeue): a requeued message goes back to the head of the
        # queue and is redelivered at once; without this pause a database
        # outage would turn the intake into a busy loop.
        self._sleep(self.requeue_delay)
        return REQUEUE, "requeued"


def build_endpoint(conf):
    return AggregateEndpoint(requeue_delay=conf.notifications.requeue_delay)

