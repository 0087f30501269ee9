"""Nova aggregate notifications parsed strictly into one event type.

Two formats arrive (nova.md section 11): legacy ``aggregate.addhost.end``
with a delta payload and publisher ``aggregate.<id>``, and versioned
``aggregate.add_host.end`` whose ``AggregatePayload`` carries the whole
aggregate. Both become one :class:`poolmgr.events.AggregateEvent`;
anything Nova would not send raises :class:`InvalidNotification`.
"""

import dataclasses
import datetime
import re

from poolmgr import events

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
_VERSION = re.compile(r"^\d+\.\d+$")


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


def _plain(value):
    """True when _string(value, what) would return it (names and keys).

    NOTE(labels): the hosts and metadata loops test this first, so the
    label of a field ("metadata value of 'key'") is only formatted for a
    value that is refused.
    """
    return (isinstance(value, str) and 0 < len(value) <= _MAX_NAME
            and "\x00" not in value)


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
    hosts = tuple(value)
    for host in hosts:
        if not _plain(host):
            _string(host, "host name")
    if len(set(hosts)) != len(hosts):
        raise InvalidNotification("hosts lists a host twice")
    return hosts


def _metadata(value, what, allow_null_values=False):
    if not isinstance(value, dict):
        raise InvalidNotification("%s must be an object, not %s"
                                  % (what, type(value).__name__))
    result = {}
    for key, item in value.items():
        if not _plain(key):
            _string(key, "%s key" % what)
        if item is None and allow_null_values:
            result[key] = None
        elif isinstance(item, str) and _plain(item or "-"):
            result[key] = item
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
    fraction = match.group(7)
    if fraction is None or len(fraction) == 6:
        # NOTE(fast): Nova's own two shapes; fromisoformat reads them in C
        # (every Python 3 since 3.7), the general path below costs 3x.
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
    parts = [int(p) for p in match.groups()[:6]]
    micro = int((fraction or "0").ljust(6, "0"))
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
    if "nova_object.data" in payload:
        return True
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
    if not isinstance(version, str) or not _VERSION.match(version):
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
    return _new_event(
        common, kind=kind, phase=phase, versioned=True,
        aggregate_id=aggregate_id,
        uuid=_string(data["uuid"], "uuid", max_len=_MAX_UUID),
        name=_string(data["name"], "name"), hosts=hosts, metadata=metadata)


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
    return _new_event(common, kind=kind, phase=phase, versioned=False,
                      **fields)



# NOTE(construct): a frozen dataclass's __init__ sets each of its 15
# fields through object.__setattr__: about a third of parsing a message
# (4-5 us of CPU on the benchmark machine). The parser knows it passes
# every required field, so it fills the instance's __dict__ in one step
# instead, which is what __init__ leaves behind; an AggregateEvent that
# needs its __init__ (a __post_init__, slots, default factories, fields
# left out of __init__) is built by it.
_EVENT = events.AggregateEvent
_EVENT_FIELDS = dataclasses.fields(_EVENT)
_EVENT_DEFAULTS = {f.name: f.default for f in _EVENT_FIELDS
                   if f.default is not dataclasses.MISSING}
_EVENT_REQUIRED = frozenset(f.name for f in _EVENT_FIELDS
                            if f.default is dataclasses.MISSING)
_FAST_EVENTS = (
    not hasattr(_EVENT, "__post_init__") and "__slots__" not in vars(_EVENT)
    and all(f.init and f.default_factory is dataclasses.MISSING
            and not isinstance(f.default, (list, dict, set))
            for f in _EVENT_FIELDS))


def _new_event(common, **fields):
    fields.update(common)
    if not _FAST_EVENTS or not _EVENT_REQUIRED <= fields.keys() or (
            not fields.keys() <= _EVENT_ALL):
        return _EVENT(**fields)
    event = object.__new__(_EVENT)
    values = vars(event)
    values.update(_EVENT_DEFAULTS)
    values.update(fields)
    return event


_EVENT_ALL = frozenset(f.name for f in _EVENT_FIELDS)


def counter_label(event_type):
    """The event type a rejected message is counted under."""
    return event_type if event_type in _KNOWN_EVENT_TYPES \
        else OTHER_EVENT_TYPE

