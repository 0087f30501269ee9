from oslo_config import cfg

GROUP = cfg.OptGroup("notifications", title="Nova notification intake")

OPTS = [
    cfg.ListOpt("topics", default=["versioned_notifications", "notifications"],
                help="Topics Nova publishes aggregate notifications on: the "
                     "versioned topic ([notifications] "
                     "versioned_notifications_topics in nova.conf) and the "
                     "legacy one ([oslo_messaging_notifications] topics)."),
    cfg.StrOpt("exchange", default="nova",
               help="Exchange Nova publishes to (nova's control_exchange)."),
    cfg.StrOpt("pool", default="poolmgr",
               help="Listener pool: the name of poolmgr's own durable queue, "
                    "so poolmgr never competes with ceilometer for messages."),
    cfg.IntOpt("workers", default=1, min=1,
               help="Number of intake worker processes."),
    cfg.IntOpt("executor_threads", default=4, min=1,
               help="Threads handling messages inside one intake worker."),
    cfg.IntOpt("batch_size", default=200, min=1,
               help="Notifications stored per database transaction. Keep it "
                    "at most half of [oslo_messaging_rabbit] "
                    "rabbit_qos_prefetch_count so a batch never waits for "
                    "its timeout while the broker waits for acks."),
    cfg.FloatOpt("batch_timeout", default=0.2, min=0.01,
                 help="Seconds a partial batch waits for more notifications; "
                      "bounds the delay of a lone notification."),
    cfg.FloatOpt("requeue_delay", default=2.0, min=0.0,
                 help="Seconds to wait before requeuing a message that could "
                      "not be stored (database unreachable), so a broken "
                      "database does not make the intake spin."),
]
