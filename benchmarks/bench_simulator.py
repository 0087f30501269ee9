"""poolmgr-xapi-sim at scale: start-up time, memory, calls per second.

``python benchmarks/bench_simulator.py [--hosts 500] [--threads 8]
[--seconds 3]`` prints the figures; ``run(results)`` stores them for
``benchmarks/run.py``. Figures, not assertions.

The clients run in this process (threads with the real ``XenAPI`` client),
so the calls-per-second figure is what one Python process serves while it
also drives the load: a floor for the simulator, not a ceiling.
"""

import argparse
import os
import resource
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import XenAPI  # noqa: E402

from poolmgr.simulator import Simulator  # noqa: E402

PASSWORD = "bench"


def peak_rss_mb():
    # NOTE(rusage): ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def login(host):
    session = XenAPI.Session(host["url"])
    session.xenapi.login_with_password("root", PASSWORD, "2.21", "bench")
    return session


def calls_per_second(sim, threads, seconds):
    """host.get_all_records from ``threads`` clients, each on its own
    host, for ``seconds``; returns (calls/s, errors)."""
    hosts = sim.hosts
    stop = threading.Event()
    counts = [0] * threads
    errors = [0] * threads

    def client(i):
        session = login(hosts[i % len(hosts)])
        while not stop.is_set():
            try:
                session.xenapi.host.get_all_records()
                counts[i] += 1
            except Exception:  # noqa: BLE001 - counted, not fatal
                errors[i] += 1
        session.xenapi.session.logout()

    workers = [threading.Thread(target=client, args=(i,))
               for i in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(0.2)  # everyone logged in before counting starts
    before = sum(counts)
    start = time.monotonic()
    time.sleep(seconds)
    done = sum(counts)
    elapsed = time.monotonic() - start
    stop.set()
    for worker in workers:
        worker.join()
    return (done - before) / elapsed, sum(errors)


def measure(hosts=500, threads=8, seconds=3.0):
    rss_before = peak_rss_mb()
    start = time.monotonic()
    sim = Simulator(hosts=hosts, port=0, password=PASSWORD,
                    join_delay=1.0, eject_delay=1.0)
    sim.start()
    startup = time.monotonic() - start
    rss_started = peak_rss_mb()
    try:
        # every host answers a login (proves they all listen)
        start = time.monotonic()
        for host in sim.hosts:
            login(host).xenapi.session.logout()
        login_all = time.monotonic() - start
        rate, errors = calls_per_second(sim, threads, seconds)
    finally:
        sim.stop()
    return {"hosts": hosts, "startup_s": round(startup, 3),
            "login_every_host_s": round(login_all, 3),
            "peak_rss_mb_after_start": round(rss_started, 1),
            "rss_mb_before_start": round(rss_before, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "calls_per_s": round(rate, 1), "client_threads": threads,
            "seconds": seconds, "errors": errors,
            "threads_idle": threading.active_count()}


def run(results, scale=1.0):
    figures = measure(hosts=max(10, int(500 * scale)))
    # NOTE(runner): one figure-shaped entry under "simulator" with every
    # number in its details, plus one row per figure for the table.
    results["simulator"] = {"value": figures["calls_per_s"],
                            "unit": "calls/s", "goal": "", "ok": None,
                            "details": figures}
    add = getattr(results, "add", None)
    if add is not None:
        add("simulator_startup_s", figures["startup_s"], "s", ("<=", 5.0),
            details={"hosts": figures["hosts"]})
        add("simulator_peak_rss_mb", figures["peak_rss_mb"], "MB",
            ("<=", 300.0), details={"hosts": figures["hosts"]})
        add("simulator_calls_per_s", figures["calls_per_s"], "calls/s",
            (">=", 300.0), details={"threads": figures["client_threads"]})
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8,
                        help="client threads for calls/s (default 8)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="how long to measure calls/s (default 3)")
    args = parser.parse_args(argv)
    figures = measure(args.hosts, args.threads, args.seconds)
    print("hosts                   %d" % figures["hosts"])
    print("start-up                %.3f s" % figures["startup_s"])
    print("login on every host     %.3f s" % figures["login_every_host_s"])
    print("peak RSS after start    %.1f MB"
          % figures["peak_rss_mb_after_start"])
    print("peak RSS                %.1f MB" % figures["peak_rss_mb"])
    print("calls/s served          %.0f (host.get_all_records, %d client "
          "threads, %.0f s, %d errors)"
          % (figures["calls_per_s"], figures["client_threads"],
             figures["seconds"], figures["errors"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
