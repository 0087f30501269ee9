"""The daemon against a RabbitMQ that refuses its credentials."""

import uuid

from tests.functional import daemon_support as support


def _refused_daemon(daemon_factory, bus, rabbit_url):
    wrong = "wrong-%s" % uuid.uuid4().hex[:8]
    user = rabbit_url.split("://", 1)[1].split(":", 1)[0]
    host = rabbit_url.rsplit("@", 1)[1]
    daemon = daemon_factory(debug=True)
    daemon.set_option("transport_url = %s" % bus.rabbit_url,
                      "transport_url = rabbit://%s:%s@%s" % (user, wrong,
                                                             host))
    return daemon.start(wait=False), wrong


def _retried(daemon, times):
    support.wait_for(
        lambda: daemon.log_text().count("retrying the message bus") >= times,
        timeout=60, what="%d retries of the message bus" % times)
    return daemon.log_text()


def test_refused_broker_credentials_are_one_error_line_not_a_traceback_loop(
        bus, daemon_factory, rabbit_url):
    daemon, _ = _refused_daemon(daemon_factory, bus, rabbit_url)
    log = _retried(daemon, 3)
    assert log.count("cannot listen on the message bus") == 1
    assert "Traceback" not in log
    assert "ACCESS_REFUSED" in log


def test_refused_broker_credentials_are_masked_in_the_error_line(
        bus, daemon_factory, rabbit_url):
    daemon, wrong = _refused_daemon(daemon_factory, bus, rabbit_url)
    log = _retried(daemon, 1)
    line = next(x for x in log.splitlines()
                if "cannot listen on the message bus" in x)
    assert wrong not in log
    assert ":***@" in line


def test_intake_listens_once_the_broker_accepts_the_credentials(
        bus, daemon_factory, rabbit_url):
    with support.refused_broker_user(rabbit_url) as (url, accept):
        daemon = daemon_factory(debug=True)
        daemon.set_option("transport_url = %s" % bus.rabbit_url,
                          "transport_url = %s" % url)
        daemon.start(wait=False)
        _retried(daemon, 1)
        accept()
        support.wait_for(lambda: "listening on exchange" in
                         daemon.log_text(), timeout=90,
                         what="the intake to listen")
        assert "the message bus accepted it" in daemon.log_text()


def test_sigterm_while_the_broker_is_unreachable_stops_the_intake_at_once(
        bus, daemon_factory):
    daemon = daemon_factory(debug=True)
    daemon.set_option("transport_url = %s" % bus.rabbit_url,
                      "transport_url = rabbit://guest:guest@127.0.0.1:%d/"
                      % support.free_port())
    daemon.start(wait=False)
    support.wait_for(lambda: "Connection failed" in daemon.log_text(),
                     timeout=60, what="oslo.messaging to retry the broker")
    daemon.stop()
    log = daemon.log_text()
    assert "Graceful shutdown timeout" not in log
    assert "Intake worker 0 stopped while connecting" in log
