"""[nova]: how poolmgr reaches Nova's API (desired-state sync, reflection).

The section is loaded the way every OpenStack service loads another
service's client: keystoneauth1's auth, session and adapter options
(``auth_type`` and that plugin's options, ``cafile``, ``insecure``,
``timeout``, ``region_name``, ``valid_interfaces``, ``endpoint_override``,
...). Without ``auth_type`` the section is "not configured" and poolmgr runs
on notifications alone.

keystoneauth1 (with requests) is imported only by the functions that need
its options, so a process can register poolmgr's own ``[nova]`` options
without it (``register(conf, group, libraries=False)``: the daemon's master).
"""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    "nova", title="Nova API",
    help="How poolmgr reaches Nova's API: it lists the aggregates "
         "(desired-state sync) and writes each pool's state into its "
         "aggregate's metadata. Leave auth_type unset to run on "
         "notifications alone.")

OPTS = [
    cfg.FloatOpt("sync_interval", default=300.0, min=1.0,
                 help="Seconds between two desired-state syncs (GET "
                      "/os-aggregates), also run at start-up: adopts "
                      "aggregates created before poolmgr listened and heals "
                      "changes whose notifications were lost."),
    cfg.FloatOpt("first_sync_wait", default=60.0, min=0.0,
                 help="Seconds the first desired-state sync after start "
                      "waits for the intake's notification queue to be "
                      "bound, so that every change Nova makes while poolmgr "
                      "starts is seen by the listing or by a notification. "
                      "When the queue is not bound by then (the message bus "
                      "is unreachable) the sync runs anyway and runs again "
                      "as soon as the queue is bound."),
    cfg.BoolOpt("reflect_metadata", default=True,
                help="Write each pool's state into its aggregate's metadata "
                     "(operational_state, master_compute, one <compute "
                     "host>: <XenServer host uuid> key per member). Only "
                     "used when [nova] is configured."),
    cfg.FloatOpt("reflect_interval", default=2.0, min=0.1,
                 help="Seconds between two looks for pools whose state "
                      "changed, to reflect them into Nova."),
]

# The session's default timeout is none at all: a stopped nova-api would
# hang the sync forever.
DEFAULT_TIMEOUT = 30


def register(conf, group, libraries=True):
    conf.register_opts(OPTS, group=group)
    if libraries:
        register_keystoneauth(conf, group.name)


def register_keystoneauth(conf, group_name=None):
    """keystoneauth1's auth, session and adapter options in ``[nova]``."""
    from keystoneauth1 import loading as ks_loading
    group = GROUP.name if group_name is None else group_name
    ks_loading.register_session_conf_options(conf, group)
    ks_loading.register_auth_conf_options(conf, group)
    ks_loading.register_adapter_conf_options(conf, group,
                                             include_deprecated=False)
    conf.set_default("service_type", "compute", group=group)
    conf.set_default("timeout", DEFAULT_TIMEOUT, group=group)


def list_opts():
    """Every option of the section, for oslo-config-generator.

    As nova's own conf does for its clients: the common auth options plus
    those of the ``password`` plugin, the session and the adapter options.
    """
    from keystoneauth1 import loading as ks_loading
    opts = list(OPTS)
    opts += ks_loading.get_session_conf_options()
    opts += ks_loading.get_auth_common_conf_options()
    opts += ks_loading.get_auth_plugin_conf_options("password")
    opts += ks_loading.get_adapter_conf_options(include_deprecated=False)
    seen, result = set(), []
    for opt in opts:
        if opt.dest not in seen:
            seen.add(opt.dest)
            result.append(opt)
    # The defaults register() sets, as the sample config should show them.
    for opt in result:
        if opt.dest == "timeout":
            opt.default = DEFAULT_TIMEOUT
        elif opt.dest == "service_type":
            opt.default = "compute"
    return result
