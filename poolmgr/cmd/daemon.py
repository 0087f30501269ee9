"""The poolmgr daemon: ``poolmgr --config-file /etc/poolmgr/poolmgr.conf``."""

import sys

from oslo_log import log

from poolmgr import service
from poolmgr import utils

LOG = log.getLogger(__name__)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    conf = service.prepare_service(argv)
    sm = service.build_service_manager(conf)
    # NOTE(title): cotyledon titles the master with the raw command line;
    # mask it in case a URL with a password was passed on it.
    service.set_process_title("poolmgr: master process [%s]"
                              % utils.mask_url(" ".join(argv)))
    sm.run()


if __name__ == "__main__":
    main()
