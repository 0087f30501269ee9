"""The poolmgr daemon: ``poolmgr --config-file /etc/poolmgr/poolmgr.conf``."""

import gc
import sys

from poolmgr import memory

# NOTE(defer): before oslo.config is imported (poolmgr.memory).
memory.defer()

from oslo_config import cfg  # noqa: E402
from oslo_log import log  # noqa: E402

from poolmgr import bootstrap  # noqa: E402
from poolmgr import service  # noqa: E402
from poolmgr import utils  # noqa: E402

LOG = log.getLogger(__name__)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        # NOTE(lean): the master parses a conf without the libraries'
        # options (no oslo.messaging, oslo.db or keystoneauth1 imported
        # here, so none is mapped into every worker); check_config reads
        # every value, theirs included, in a child that then exits.
        conf = bootstrap.prepare_service(
            argv, conf=bootstrap.build_conf(libraries=False), log_values=False)
        checked = bootstrap.check_config(conf)
    except cfg.Error as exc:
        # A missing file or a bad value is the operator's input: one line,
        # the usage exit code, no traceback.
        print("poolmgr: configuration error: %s"
              % utils.mask_url(str(exc)), file=sys.stderr)
        return 2
    sm = service.build_service_manager(
        conf, nova_configured=checked["nova_configured"])
    # NOTE(title): cotyledon titles the master with the raw command line;
    # mask it in case a URL with a password was passed on it.
    service.set_process_title("poolmgr: master process [%s]"
                              % utils.mask_url(" ".join(argv)))
    # NOTE(fork): the workers are forked from this process; what it
    # imported is shared with them copy-on-write. A collection in a worker
    # writes to every tracked object's header and so copies those pages:
    # freezing them first keeps them shared (fewer private MB per worker).
    gc.collect()
    gc.freeze()
    sm.run()


if __name__ == "__main__":
    sys.exit(main())
