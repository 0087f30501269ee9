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
                help="Verify the certificate of https:// xapi URLs. Turn off "
                     "only for lab hosts with self-signed certificates."),
    cfg.StrOpt("ca_file",
               help="CA bundle used to verify https:// xapi URLs (defaults "
                    "to the system store)."),
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
]
