from oslo_config import cfg

GROUP = cfg.OptGroup("reconciler", title="Pool reconciliation")

OPTS = [
    cfg.IntOpt("workers", default=1, min=1,
               help="Number of reconciler worker processes."),
    cfg.IntOpt("threads", default=8, min=1,
               help="Pools reconciled in parallel inside one worker. Steps "
                    "inside one pool are always serial."),
    cfg.FloatOpt("resync_interval", default=300.0, min=1.0,
                 help="Seconds between drift checks of a converged pool (a "
                      "host joined or ejected by hand, a PBD unplugged, a "
                      "master changed)."),
    cfg.FloatOpt("poll_interval", default=2.0, min=0.05,
                 help="Seconds between looks for pools to reconcile when no "
                      "wake-up arrives."),
    cfg.FloatOpt("lease_time", default=60.0, min=1.0,
                 help="Seconds a reconciler holds a pool's lease without "
                      "renewing it. A dead holder's lease expires after "
                      "this."),
    cfg.FloatOpt("retry_initial_backoff", default=2.0, min=0.01,
                 help="First delay before retrying a transient failure."),
    cfg.FloatOpt("retry_max_backoff", default=300.0, min=0.01,
                 help="Cap of the exponential retry delay."),
    cfg.IntOpt("max_attempts", default=10, min=1,
               help="Transient failures of one member step before the member "
                    "is put in error (an operator can retry)."),
    cfg.FloatOpt("wait_poll_interval", default=1.0, min=0.05,
                 help="Seconds between two looks at a pool that waits for a "
                      "join, an eject or a master hand-over to take effect. "
                      "A waiting pool holds no thread and no lease between "
                      "looks."),
    cfg.FloatOpt("wait_long_poll", default=2.0, min=0.0,
                 help="Seconds one look at a waiting pool may wait on the "
                      "master (event.from timeout) for the change to show; "
                      "the look ends as soon as it shows. 0 looks and "
                      "returns at once."),
    cfg.IntOpt("wait_threads", default=16, min=0,
               help="Threads, besides `threads`, that look at waiting "
                    "pools: each look long-polls the pool's master for up "
                    "to wait_long_poll and holds its thread only that long. "
                    "Waiting pools beyond this number are looked at on the "
                    "`threads` without waiting on the master, every "
                    "wait_poll_interval. 0: looks share `threads` (at most "
                    "half of them long-poll)."),
]
