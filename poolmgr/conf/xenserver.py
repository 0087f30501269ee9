from oslo_config import cfg

GROUP = cfg.OptGroup("xenserver", title="XenServer (xapi) connections",
                     help="How poolmgr talks to the xapi of each host.")

OPTS = [
    cfg.StrOpt("connection_username", default="root",
               help="Username for xapi on every registered host. The same "
                    "credentials are handed to pool.join for the master, as "
                    "xapi pools share one set of credentials."),
    cfg.StrOpt("connection_password", secret=True,
               help="Password for xapi on every registered host. Never "
                    "logged."),
    cfg.BoolOpt("verify_tls", default=True,
                help="Verify the certificate of https:// xapi URLs of hosts "
                     "without a pin against ca_file or the system store. A "
                     "host pinned with 'poolmgr-manage host register --pin' "
                     "accepts exactly its pinned certificate whatever this "
                     "says. Turn off only for lab hosts."),
    cfg.StrOpt("ca_file",
               help="CA bundle used to verify https:// xapi URLs of hosts "
                    "without a pin (defaults to the system store)."),
    cfg.FloatOpt("call_timeout", default=60.0, min=1.0,
                 help="Seconds to wait for one xapi call before treating the "
                      "host as unreachable."),
    cfg.BoolOpt("use_join_force", default=False,
                help="Use pool.join_force instead of pool.join. join_force "
                     "skips only xapi's homogeneity check (CPU vendor and "
                     "software version); leave off unless you know the "
                     "hosts are compatible."),
    cfg.FloatOpt("join_timeout", default=600.0, min=1.0,
                 help="Seconds to wait after pool.join for the master to list "
                      "the new member live and enabled with its shared SRs "
                      "plugged."),
    cfg.FloatOpt("eject_timeout", default=600.0, min=1.0,
                 help="Seconds to wait after pool.eject for the host to "
                      "answer "
                      "as a standalone master."),
    # The compute VM (classic topology: nova-compute in a VM on the host).
    cfg.StrOpt("eject_compute_vm", default="refuse",
               choices=[("refuse", "put the member in error, naming the "
                         "compute VM and the way out"),
                        ("shutdown", "shut the compute VM down cleanly and "
                         "eject (as Nova's driver did); the eject destroys "
                         "it")],
               help="What to do when a host that has a registered compute "
                    "VM must leave its pool (or, after a master hand-over, "
                    "the old master must). pool.eject wipes the host's "
                    "local SRs, and with them the compute VM's disk."),
    cfg.FloatOpt("reboot_timeout", default=1200.0, min=1.0,
                 help="Seconds a host rebooted by 'poolmgr-manage pool "
                      "rolling-reboot' may take to answer again, live on the "
                      "master with a new agent_start_time; past it the run "
                      "stops with a reason (the host stays disabled). Also "
                      "the socket timeout of host.evacuate."),
    cfg.FloatOpt("compute_vm_shutdown_timeout", default=120.0, min=1.0,
                 help="Seconds VM.clean_shutdown of a compute VM may take "
                      "before a join falls back to VM.hard_shutdown."),
]
