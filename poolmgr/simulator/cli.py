"""poolmgr-xapi-sim: run simulated XenServer hosts until SIGTERM."""

import argparse
import json
import os
import signal
import sys
import threading

from poolmgr.simulator import Simulator


def build_parser():
    parser = argparse.ArgumentParser(
        prog="poolmgr-xapi-sim",
        description="Simulated XenServer hosts speaking xapi's XML-RPC, "
                    "with xapi's pool.join/pool.eject semantics.")
    parser.add_argument("--hosts", type=int, default=1,
                        help="number of hosts (xs01, xs02, ...)")
    parser.add_argument("--port", type=int, default=8080,
                        help="port every host listens on (0: pick a free one)")
    parser.add_argument("--address-base", type=int, default=10,
                        help="host i listens on 127.0.0.0 + BASE + i")
    parser.add_argument("--username", default="root")
    parser.add_argument("--password",
                        default=os.environ.get("POOLMGR_SIM_PASSWORD", ""),
                        help="xapi password the hosts accept (never printed;"
                             " also POOLMGR_SIM_PASSWORD, which keeps it out"
                             " of the process table altogether)")
    parser.add_argument("--join-delay", type=float, default=10.0,
                        help="seconds a host restarts after pool.join "
                             "(xapi's fuse: 10)")
    parser.add_argument("--eject-delay", type=float, default=10.0,
                        help="seconds a host restarts after pool.eject")
    parser.add_argument("--compute-vms", action="store_true",
                        help="give each host a running VM "
                             "nova-compute-<hostname> on its local SR (the "
                             "classic topology); the JSON lines then carry "
                             "compute_vm_uuid")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS, each host with its own "
                             "self-signed certificate (plain HTTP is still "
                             "answered on the same port); the JSON lines "
                             "then carry an https:// url and "
                             "sha256_fingerprint")
    return parser


def _hide_password_from_ps(argv):
    """Rewrite the process title so ``ps`` never shows the password."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - optional outside poolmgr
        return
    shown, hide_next = [], False
    for arg in argv:
        if hide_next:
            shown.append("***")
            hide_next = False
        elif arg == "--password":
            shown.append(arg)
            hide_next = True
        elif arg.startswith("--password="):
            shown.append("--password=***")
        else:
            shown.append(arg)
    setproctitle.setproctitle(" ".join(["poolmgr-xapi-sim"] + shown))


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    _hide_password_from_ps(argv)
    if args.hosts < 1:
        parser.error("--hosts must be at least 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.address_base < 0 or args.address_base + args.hosts > 16777214:
        parser.error("--address-base leaves no room for the hosts in 127/8")
    if args.join_delay < 0 or args.eject_delay < 0:
        parser.error("delays must be >= 0")
    sim = Simulator(hosts=args.hosts, port=args.port,
                    address_base=args.address_base, username=args.username,
                    password=args.password, join_delay=args.join_delay,
                    eject_delay=args.eject_delay,
                    compute_vms=args.compute_vms, tls=args.tls)
    try:
        sim.start()
    except OSError as exc:
        print("poolmgr-xapi-sim: cannot listen: %s" % exc, file=sys.stderr)
        return 1
    done = threading.Event()

    def _stop(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for host in sim.hosts:
        print(json.dumps(host, sort_keys=True))
    sys.stdout.flush()
    while not done.wait(1.0):
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
