"""The intake's one-look dispatcher and its notification listener.

Everything else Nova publishes on the same topics (``instance.*``,
``compute.*``, ``service.*``: nearly all of the stream) is decided on its
event type alone, before anything else of it is read, counted and acked
(:class:`IntakeDispatcher`).
"""

import gc

from oslo_log import log as logging
import oslo_messaging
from oslo_messaging.notify import dispatcher as notify_dispatcher
from oslo_messaging.notify import listener as notify_listener

from poolmgr.intake.endpoint import describe
from poolmgr.intake.endpoint import build_endpoint
from poolmgr.intake.endpoint import message_fingerprint
from poolmgr.intake.endpoint import REQUEUE
from poolmgr.intake.parse import AGGREGATE_PREFIX

LOG = logging.getLogger(__name__)


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
                    describe(message_id, 64),
                    describe(body.get("event_type")), reason)
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
    # NOTE(gc): what the worker holds by now (modules, configuration,
    # oslo.messaging and SQLAlchemy state) lives as long as the process;
    # frozen, a full collection no longer rescans it (with the former ORM
    # batch path those collections cost about 15 us of CPU per aggregate
    # message; see benchmarks/profile_intake.py --freeze).
    gc.freeze()
    return notify_listener.BatchNotificationServer(
        transport, targets, IntakeDispatcher(endpoint), allow_requeue=True,
        pool=conf.notifications.pool,
        batch_size=conf.notifications.batch_size,
        batch_timeout=conf.notifications.batch_timeout)
