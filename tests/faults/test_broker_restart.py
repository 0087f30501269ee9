"""RabbitMQ restarted while Nova publishes: nothing is lost.

A publisher thread sends notifications through oslo.messaging's Notifier
(as Nova does, retrying until the broker answers) before, during and after
RabbitMQ is stopped and started (``rabbitmqctl stop_app`` / ``start_app``).
The daemon must reconnect by itself and record every notification the
publisher sent.
"""

import threading
import time

from poolmgr.db import api as db_api
from poolmgr.simulator import fakenova
from tests.faults import support
from tests.functional import daemon_support as ds


def test_broker_restart_while_publishing_loses_nothing(bed):
    daemon = bed.daemon(debug=False)
    workers = daemon.children()
    nova = bed.nova(formats=(fakenova.VERSIONED,))
    agg = nova.create_aggregate("through-restart")
    stop = threading.Event()
    errors = []
    added = []

    def publish():
        try:
            while not stop.is_set():
                host = "cmp-%04d" % len(added)
                nova.add_host(agg, host)
                added.append(host)
                time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    with support.rabbit_restored():
        ds.recorded(2)
        thread.start()
        support.wait_for(lambda: len(added) >= 30, timeout=60,
                         what="publishing to start")
        support.rabbit_stop()
        at_stop = len(added)
        support.settle(1.0)
        support.rabbit_start()
        support.wait_for(lambda: len(added) >= at_stop + 30, timeout=120,
                         what="publishing to resume after the restart")
        stop.set()
        thread.join(60)
    assert errors == []
    sent = len(nova.sent)
    ds.recorded(sent)
    assert sum(db_api.notification_counts().values()) == sent
    assert ds.desired(agg)[1] == sorted(added)
    assert daemon.proc.poll() is None
    assert daemon.children() == workers, "a worker died and was respawned"
