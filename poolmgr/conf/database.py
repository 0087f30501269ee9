from oslo_config import cfg

# NOTE(group): oslo.db owns [database]; these are poolmgr's additions to it.
GROUP = cfg.OptGroup("database", title="Database")

OPTS = [
    cfg.IntOpt("notification_ttl", default=0, min=0,
               help="Days a row of the notification log is kept; the daemon "
                    "deletes older ones every purge_interval. 0 keeps them "
                    "for ever. The metrics counters are not affected."),
    cfg.IntOpt("journal_ttl", default=0, min=0,
               help="Days a finished row of the operations journal is kept; "
                    "open rows and the newest row of each pool are always "
                    "kept. 0 keeps them for ever."),
    cfg.IntOpt("purge_interval", default=3600, min=60,
               help="Seconds between two purges by the daemon when "
                    "notification_ttl or journal_ttl is set (the purge "
                    "service only runs then; enabling it needs a restart)."),
    cfg.IntOpt("purge_batch_size", default=1000, min=1,
               help="Rows deleted per transaction by a purge, so it never "
                    "holds locks for long."),
]
