"""The engine alone: ``python -m poolmgr.cmd.engine --config-file F``.

``--aggregate ID`` reconciles one pool once (exit 0 when converged, 1
otherwise); without it the engine runs until SIGTERM or SIGINT.
"""

import argparse
import signal
import sys
import threading

from poolmgr import bootstrap
from poolmgr.db import api as db_api
from poolmgr import engine as pool_engine
from poolmgr import service


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m poolmgr.cmd.engine")
    parser.add_argument("--aggregate", type=int)
    parser.add_argument("--owner")
    args, rest = parser.parse_known_args(argv)
    conf = bootstrap.prepare_service(rest)
    db_api.configure(conf, pool_users=service._engine_threads(conf))
    engine = pool_engine.Engine(conf, owner=args.owner)
    if args.aggregate is not None:
        result = engine.reconcile_pool(args.aggregate)
        return 0 if result.converged else 1
    stop = threading.Event()

    def _terminate(signum, frame):
        stop.set()
        engine.stop()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    engine.run_forever(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
