from oslo_config import cfg

GROUP = cfg.OptGroup("metrics", title="Prometheus metrics")

OPTS = [
    cfg.PortOpt("prometheus_port", default=0,
                help="Port of the Prometheus text endpoint; 0 turns it off."),
    cfg.HostAddressOpt("prometheus_host", default="127.0.0.1",
                       help="Address the Prometheus endpoint binds to."),
]
