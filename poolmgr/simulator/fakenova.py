"""A tiny stand-in for Nova's aggregate API that notifies exactly as Nova does.

Used by the demo, the functional tests and the benchmarks. It keeps the
aggregates in memory and, for each API call, emits what Nova's
``AggregateAPI`` / ``objects.Aggregate`` emit, in Nova's order (nova.md
section 11.3): legacy ``.start``, versioned ``.start``, the change, legacy
``.end``, versioned ``.end``. Messages go through a real
``oslo_messaging.Notifier`` with the ``messagingv2`` driver, so the
envelope, routing keys, ``message_id`` and ``timestamp`` are oslo's own.
Failures happen where Nova fails: adding a host twice emits both
``.start`` messages and then raises, like ``AggregateHostExists``.
"""

import copy
import uuid

import oslo_messaging

VERSIONED = "versioned"
LEGACY = "legacy"


class AggregateError(Exception):
    """What Nova's API would answer with a 4xx."""


class _Discard:
    """A notifier that publishes nothing."""

    def prepare(self, **kwargs):
        return self

    def info(self, *args):
        pass


class FakeNova:
    """Nova's aggregate API over a real notification transport.

    ``formats`` mirrors nova.conf ``[notifications] notification_format``:
    ``("versioned", "legacy")`` is ``both``. ``transport`` None: nothing is
    published, what would be is only recorded in ``sent`` (streams built
    offline, by benchmarks and tests).
    """

    def __init__(self, transport, publisher_host="nova-api-host",
                 formats=(VERSIONED, LEGACY),
                 legacy_topics=("notifications",),
                 versioned_topics=("versioned_notifications",),
                 first_id=1):
        unknown = set(formats) - {VERSIONED, LEGACY}
        if unknown:
            raise ValueError("unknown formats %s" % sorted(unknown))
        self.formats = tuple(formats)
        self.publisher_host = publisher_host
        if transport is None:
            self._legacy = self._versioned = _Discard()
        else:
            self._legacy = oslo_messaging.Notifier(
                transport, driver="messagingv2", topics=list(legacy_topics))
            self._versioned = oslo_messaging.Notifier(
                transport, driver="messagingv2",
                topics=list(versioned_topics))
        self.aggregates = {}
        self._next_id = first_id
        self.sent = []  # (format, event_type, publisher_id, payload)

    # -- what goes on the wire ----------------------------------------------

    def _context(self):
        # NOTE(context): Nova sends a redacted copy of the RequestContext;
        # the fields that matter are the request id and who asked.
        return {"request_id": "req-%s" % uuid.uuid4(), "user_id": "admin",
                "project_id": "admin", "is_admin": True, "roles": ["admin"],
                "user_name": "admin", "project_name": "admin",
                "global_request_id": None, "read_only": False,
                "show_deleted": False}

    def _legacy_notify(self, suffix, payload):
        if LEGACY not in self.formats:
            return
        # compute_utils.notify_about_aggregate_update: publisher is
        # aggregate.<id>, or aggregate.<name> when there is no id yet.
        identifier = payload.get("aggregate_id") or payload.get("name")
        publisher_id = "aggregate.%s" % identifier
        event_type = "aggregate.%s" % suffix
        payload = copy.deepcopy(payload)
        self._legacy.prepare(publisher_id=publisher_id).info(
            self._context(), event_type, payload)
        self.sent.append((LEGACY, event_type, publisher_id, payload))

    def _versioned_notify(self, agg, action, phase, create_start=False):
        if VERSIONED not in self.formats:
            return
        data = {"id": agg["id"], "uuid": agg["uuid"], "name": agg["name"],
                "hosts": list(agg["hosts"]),
                "metadata": dict(agg["metadata"])}
        if create_start:
            # NOTE(create-start): the object has no row yet, so
            # AggregatePayload 1.1 carries id and hosts as null, and
            # metadata as null unless an availability zone was given.
            data.update(id=None, hosts=None,
                        metadata=dict(agg["metadata"]) or None)
        payload = {"nova_object.name": "AggregatePayload",
                   "nova_object.namespace": "nova",
                   "nova_object.version": "1.1",
                   "nova_object.data": data}
        publisher_id = "nova-api:%s" % self.publisher_host
        event_type = "aggregate.%s.%s" % (action, phase)
        self._versioned.prepare(publisher_id=publisher_id).info(
            self._context(), event_type, payload)
        self.sent.append((VERSIONED, event_type, publisher_id, payload))

    def _get(self, agg_id):
        try:
            return self.aggregates[int(agg_id)]
        except (KeyError, ValueError):
            raise AggregateError("aggregate %s not found" % agg_id) from None

    # -- the API --------------------------------------------------------------

    def create_aggregate(self, name, availability_zone=None):
        """Aggregate.create(): returns the new id."""
        metadata = ({"availability_zone": availability_zone}
                    if availability_zone else {})
        payload = {"name": name}
        if metadata:
            payload["meta_data"] = dict(metadata)
        agg = {"id": None, "uuid": str(uuid.uuid4()), "name": name,
               "hosts": [], "metadata": metadata}
        self._legacy_notify("create.start", payload)
        self._versioned_notify(agg, "create", "start", create_start=True)
        agg["id"] = self._next_id
        self._next_id += 1
        self.aggregates[agg["id"]] = agg
        payload["aggregate_id"] = agg["id"]
        self._legacy_notify("create.end", payload)
        self._versioned_notify(agg, "create", "end")
        return agg["id"]

    def set_metadata(self, agg_id, updates):
        """Aggregate.update_metadata(): a value of None deletes the key."""
        agg = self._get(agg_id)
        payload = {"aggregate_id": agg["id"], "meta_data": dict(updates)}
        self._legacy_notify("updatemetadata.start", payload)
        self._versioned_notify(agg, "update_metadata", "start")
        for key, value in updates.items():
            if value is None:
                agg["metadata"].pop(key, None)
            else:
                agg["metadata"][key] = value
        self._legacy_notify("updatemetadata.end", payload)
        self._versioned_notify(agg, "update_metadata", "end")

    def add_host(self, agg_id, host):
        """AggregateAPI.add_host_to_aggregate(); the id comes from the URL."""
        # NOTE(string-id): Nova passes the URL's id through unconverted.
        payload = {"aggregate_id": str(agg_id), "host_name": host}
        self._legacy_notify("addhost.start", payload)
        agg = self._get(agg_id)
        self._versioned_notify(agg, "add_host", "start")
        if host in agg["hosts"]:
            raise AggregateError("host %s is already in aggregate %s"
                                 % (host, agg_id))
        agg["hosts"].append(host)
        payload["name"] = agg["name"]
        self._legacy_notify("addhost.end", payload)
        self._versioned_notify(agg, "add_host", "end")

    def remove_host(self, agg_id, host):
        """AggregateAPI.remove_host_from_aggregate()."""
        payload = {"aggregate_id": str(agg_id), "host_name": host}
        self._legacy_notify("removehost.start", payload)
        agg = self._get(agg_id)
        self._versioned_notify(agg, "remove_host", "start")
        if host not in agg["hosts"]:
            raise AggregateError("host %s is not in aggregate %s"
                                 % (host, agg_id))
        agg["hosts"].remove(host)
        self._legacy_notify("removehost.end", payload)
        self._versioned_notify(agg, "remove_host", "end")

    def rename(self, agg_id, name):
        """AggregateAPI.update_aggregate(name=...): Aggregate.save()."""
        agg = self._get(agg_id)
        # Legacy updateprop names neither the old nor the new name.
        payload = {"aggregate_id": agg["id"]}
        self._legacy_notify("updateprop.start", payload)
        agg["name"] = name
        self._versioned_notify(agg, "update_prop", "start")
        self._legacy_notify("updateprop.end", payload)
        self._versioned_notify(agg, "update_prop", "end")

    def delete(self, agg_id):
        """AggregateAPI.delete_aggregate(): refused while hosts remain."""
        payload = {"aggregate_id": str(agg_id)}
        self._legacy_notify("delete.start", payload)
        agg = self._get(agg_id)
        self._versioned_notify(agg, "delete", "start")
        if agg["hosts"]:
            raise AggregateError("aggregate %s still has hosts" % agg_id)
        del self.aggregates[agg["id"]]
        self._legacy_notify("delete.end", payload)
        self._versioned_notify(agg, "delete", "end")

