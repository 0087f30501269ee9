"""Options for oslo-config-generator (namespace ``poolmgr``)."""

from poolmgr.conf import metrics
from poolmgr.conf import notifications
from poolmgr.conf import reconciler
from poolmgr.conf import xenserver

_SECTIONS = (xenserver, notifications, reconciler, metrics)


def list_opts():
    return [(section.GROUP, section.OPTS) for section in _SECTIONS]


def register_opts(conf):
    for section in _SECTIONS:
        conf.register_group(section.GROUP)
        conf.register_opts(section.OPTS, group=section.GROUP)
