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
    # Issue 26: a canary live migration proves readiness.
    cfg.StrOpt("canary_vm_template",
               help="name_label of a small VM template whose disks are on "
                    "the pools' shared SR. When set, poolmgr proves live "
                    "migration once a pool becomes active (and on "
                    "'poolmgr-manage pool prove'): it clones the template "
                    "into a VM named poolmgr-canary-<aggregate id>, starts "
                    "it on the master, VM.pool_migrate's it to every other "
                    "member in turn and destroys it. Unset: no canary."),
] + [
    # A dead master (engine/failover.py, doc/source/admin/master-failure).
    cfg.FloatOpt("master_dead_after", default=60.0, min=0.0,
                 help="Seconds a pool's master may not answer, while its "
                      "members answer, before the pool is master_lost."),
    cfg.StrOpt("master_failover", default="manual",
               choices=[("manual", "report master_lost; promote a member "
                         "only on 'poolmgr-manage pool promote "
                         "--confirm-master-fenced'"),
                        ("fenced", "promote a member only after "
                         "fence_command exits 0 (the old master is powered "
                         "off)")],
               help="Who decides that a lost master is dead. poolmgr never "
                    "promotes when xapi HA is enabled on the pool."),
    cfg.StrOpt("fence_command",
               help="With master_failover = fenced: the command that powers "
                    "the lost master off (split with shell rules, run "
                    "without a shell). Its environment holds "
                    "POOLMGR_FENCE_HOST, POOLMGR_FENCE_ADDRESS and "
                    "POOLMGR_FENCE_UUID and nothing secret; exit 0 means "
                    "the host is off. Keep its own credentials in its own "
                    "files."),
    cfg.FloatOpt("fence_timeout", default=30.0, min=1.0,
                 help="Seconds fence_command may run (at most half of "
                      "[reconciler] lease_time: the pass holds the pool's "
                      "lease meanwhile); a command still running then is "
                      "killed and counts as a failed fence."),
]
