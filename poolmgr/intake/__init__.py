"""The intake: Nova's notification stream into the desired state.

- :mod:`poolmgr.intake.parse`: legacy and versioned aggregate
  notifications, strictly checked, into one :class:`AggregateEvent`;
- :mod:`poolmgr.intake.endpoint`: the batch endpoint (one transaction per
  batch, poison messages logged, stored as rejected, counted and acked;
  a requeue only while the database cannot be reached);
- :mod:`poolmgr.intake.dispatcher`: the one-look dispatcher that counts
  and acks everything that is not ``aggregate.*`` before reading it, and
  the listener built with it.
"""

from poolmgr.intake.dispatcher import build_listener  # noqa: F401
from poolmgr.intake.dispatcher import IntakeDispatcher  # noqa: F401
from poolmgr.intake.endpoint import AggregateEndpoint  # noqa: F401
from poolmgr.intake.endpoint import build_endpoint  # noqa: F401
from poolmgr.intake.endpoint import HANDLED  # noqa: F401
from poolmgr.intake.endpoint import message_fingerprint  # noqa: F401
from poolmgr.intake.endpoint import REQUEUE  # noqa: F401
from poolmgr.intake.endpoint import SKIPPED  # noqa: F401
from poolmgr.intake.parse import AGGREGATE_PREFIX  # noqa: F401
from poolmgr.intake.parse import counter_label  # noqa: F401
from poolmgr.intake.parse import InvalidNotification  # noqa: F401
from poolmgr.intake.parse import OTHER_EVENT_TYPE  # noqa: F401
from poolmgr.intake.parse import parse_notification  # noqa: F401
from poolmgr.intake.parse import parse_timestamp  # noqa: F401
