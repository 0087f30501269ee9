"""The one type every Nova aggregate notification is parsed into."""

import dataclasses
import datetime
from typing import Optional

# Kinds, named after the versioned event types; legacy names map onto them.
CREATE = "create"
DELETE = "delete"
ADD_HOST = "add_host"
REMOVE_HOST = "remove_host"
UPDATE_METADATA = "update_metadata"
UPDATE_PROP = "update_prop"
KINDS = (CREATE, DELETE, ADD_HOST, REMOVE_HOST, UPDATE_METADATA, UPDATE_PROP)

START = "start"
END = "end"

POOL_FLAG = "hypervisor_pool"


@dataclasses.dataclass(frozen=True)
class AggregateEvent:
    """A validated aggregate notification.

    Versioned notifications carry the whole aggregate after the action
    (``hosts`` and ``metadata`` are full); legacy ones carry a delta
    (``host`` for add/remove, ``metadata_delta`` where ``None`` deletes a key).
    Exactly one of the two shapes is filled in.
    """

    message_id: str
    event_type: str
    publisher_id: str
    timestamp: datetime.datetime  # naive UTC, as Nova sends it
    kind: str
    phase: str
    versioned: bool
    aggregate_id: Optional[int] = None
    uuid: Optional[str] = None
    name: Optional[str] = None
    hosts: Optional[tuple] = None           # versioned: full list, in order
    metadata: Optional[dict] = None         # versioned: full dict
    host: Optional[str] = None              # legacy add/remove host
    # legacy: the changed keys; a None value deletes the key
    metadata_delta: Optional[dict] = None
    request_id: Optional[str] = None

    @property
    def cause(self):
        return self.message_id
