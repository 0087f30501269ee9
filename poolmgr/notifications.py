"""Former home of the intake, now :mod:`poolmgr.intake`; its names, kept.

NOTE(compat): service.py, the demo, the benchmarks and the tests import
``poolmgr.notifications``; the code lives in the package's modules.
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
