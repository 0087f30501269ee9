"""Options for oslo-config-generator (namespace ``poolmgr``)."""

from oslo_config import cfg

from poolmgr.conf import database
from poolmgr.conf import metrics
from poolmgr.conf import notifications
from poolmgr.conf import nova
from poolmgr.conf import reconciler
from poolmgr.conf import xenserver

_SECTIONS = (xenserver, notifications, reconciler, metrics, nova, database)


def list_opts():
    return [(section.GROUP, getattr(section, "list_opts",
                                    lambda: section.OPTS)())
            for section in _SECTIONS]


def register_opts(conf, libraries=True):
    """Every poolmgr section on ``conf``.

    ``libraries=False`` leaves out the options poolmgr loads from a library
    inside its own sections (keystoneauth1's in ``[nova]``), so that
    nothing heavier than oslo.config is imported (the daemon's master;
    ``poolmgr.bootstrap.register_library_opts`` adds them in the workers).
    """
    for section in _SECTIONS:
        # NOTE(isolation): oslo.config keeps overrides inside the OptGroup
        # object, so each ConfigOpts gets its own copy of the group; sharing
        # the module's would leak set_override() between two configs built
        # in one process (tests, the demo, benchmarks).
        group = cfg.OptGroup(section.GROUP.name, title=section.GROUP.title,
                             help=section.GROUP.help)
        conf.register_group(group)
        if hasattr(section, "register"):
            section.register(conf, group, libraries=libraries)
        else:
            conf.register_opts(section.OPTS, group=group)
