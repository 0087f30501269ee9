"""What TLS with pins costs: simulator start-up, logins and calls.

``python benchmarks/bench_tls.py [--hosts 500] [--logins 200]
[--seconds 3]`` prints the figures; ``run(results)`` stores them for
``benchmarks/run.py``. Figures, not assertions.

Start-up: ``Simulator(tls=True)`` makes one certificate per host. Logins:
poolmgr's own XapiSession, a new connection each (TCP, TLS handshake, pin
comparison, session.login_with_password), against plain HTTP and CA
verification (the host's own certificate as ``ca_file``). Calls: one
kept-alive session calling host.get_all_records, pinned TLS against HTTP.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poolmgr.simulator import Simulator  # noqa: E402
from poolmgr.xenapi import session as xsession  # noqa: E402

PASSWORD = "bench"


def startup_seconds(hosts, tls):
    start = time.monotonic()
    sim = Simulator(hosts=hosts, port=0, password=PASSWORD, tls=tls)
    sim.start()
    elapsed = time.monotonic() - start
    sim.stop()
    return elapsed


def _session(host, pins, ca_file=None):
    return xsession.XapiSession(
        host["url"], "root", PASSWORD, timeout=10.0, ca_file=ca_file,
        pin_lookup=lambda url: pins, follow_master=False)


def logins_per_second(host, pins, count, ca_file=None):
    start = time.monotonic()
    for _ in range(count):
        session = _session(host, pins, ca_file).login()
        session.logout()
    return count / (time.monotonic() - start)


def calls_per_second(host, pins, seconds):
    session = _session(host, pins).login()
    done, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        session.call("host.get_all_records")
        done += 1
    rate = done / (time.monotonic() - start)
    session.logout()
    return rate


def measure(hosts=500, logins=200, seconds=3.0):
    figures = {"hosts": hosts,
               "startup_plain_s": round(startup_seconds(hosts, False), 3),
               "startup_tls_s": round(startup_seconds(hosts, True), 3)}
    with Simulator(hosts=1, port=0, password=PASSWORD, tls=True) as sim:
        pinned = sim.hosts[0]
        plain = dict(pinned, url=pinned["url"].replace("https://",
                                                       "http://"))
        pins = {pinned["sha256_fingerprint"]}
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca_file:
            ca_file.write(sim.certificate("xs01").pem)
            ca_file.flush()
            figures["logins_per_s_ca"] = round(logins_per_second(
                pinned, (), logins, ca_file.name), 1)
        figures.update(
            logins_per_s_http=round(logins_per_second(plain, (), logins), 1),
            logins_per_s_pinned=round(
                logins_per_second(pinned, pins, logins), 1),
            calls_per_s_http=round(calls_per_second(plain, (), seconds), 1),
            calls_per_s_pinned=round(
                calls_per_second(pinned, pins, seconds), 1))
    return figures


def run(results, scale=1.0):
    figures = measure(hosts=max(10, int(500 * scale)),
                      logins=max(20, int(200 * scale)))
    results["tls"] = {"value": figures["logins_per_s_pinned"],
                      "unit": "logins/s", "goal": "", "ok": None,
                      "details": figures}
    add = getattr(results, "add", None)
    if add is not None:
        add("tls_sim_startup_s", figures["startup_tls_s"], "s",
            ("<=", 5.0), details={"hosts": figures["hosts"]})
        add("tls_pinned_logins_per_s", figures["logins_per_s_pinned"],
            "logins/s", None,
            details={"http": figures["logins_per_s_http"],
                     "ca_verified": figures["logins_per_s_ca"]})
        add("tls_pinned_calls_per_s", figures["calls_per_s_pinned"],
            "calls/s", None, details={"http": figures["calls_per_s_http"]})
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    f = measure(args.hosts, args.logins, args.seconds)
    print("hosts                       %d" % f["hosts"])
    print("start-up, plain / --tls     %.3f s / %.3f s"
          % (f["startup_plain_s"], f["startup_tls_s"]))
    print("new-connection logins/s     %.0f http, %.0f pinned TLS, %.0f "
          "CA-verified TLS" % (f["logins_per_s_http"],
                               f["logins_per_s_pinned"],
                               f["logins_per_s_ca"]))
    print("kept-alive calls/s          %.0f http, %.0f pinned TLS"
          % (f["calls_per_s_http"], f["calls_per_s_pinned"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
