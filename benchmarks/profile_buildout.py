"""Where the reconciler's CPU goes in a build-out (not a benchmark).

The engine (``poolmgr.engine.Engine.run_forever``, the daemon's default
8 threads) runs in this process under yappi's wall-clock-free CPU profile;
the simulated hosts run in a child process so their CPU is not counted; the
desired state (100 aggregates x 5 hosts by default, a shared SR on each
pool's first host) is written into a fresh MySQL database at once, as the
``buildout_ratio_mirror`` figure does. Prints the makespan, the CPU seconds
of this process, the SQL statements by kind and yappi's top functions.

    python benchmarks/profile_buildout.py [--aggregates 100] [--hosts 5]
        [--no-profile] [--ours]
"""

import argparse
import collections
import multiprocessing
import os
import resource
import sys
import threading
import time

import common

PASSWORD = "profile-xapi-secret"


def _simulator(count, hosts_per_pool, conn):
    from poolmgr.simulator import Simulator
    sim = Simulator(hosts=count, port=0, password=PASSWORD, join_delay=1.0,
                    eject_delay=1.0).start()
    for i, host in enumerate(sim.hosts):
        if i % hosts_per_pool == 0:
            sim.create_shared_sr(host["name_label"], "nfs-%04d" % i, "nfs")
    conn.send([h["url"] for h in sim.hosts])
    conn.recv()
    sim.stop()


def _statements(engine):
    import sqlalchemy as sa
    counts = collections.Counter()

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        words = statement.split()
        verb = words[0].upper()
        table = "?"
        for key in ("FROM", "INTO", "UPDATE"):
            if key in (w.upper() for w in words):
                idx = [w.upper() for w in words].index(key)
                table = words[idx + 1].strip("`") if idx + 1 < len(words) \
                    else "?"
                break
        counts["%s %s" % (verb, table)] += 1
    return counts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--aggregates", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--ours", action="store_true",
                        help="list poolmgr's own functions only")
    args = parser.parse_args()

    from poolmgr.db import api as db_api
    from poolmgr.db import session as db_session
    from poolmgr import engine as pool_engine
    from poolmgr import bootstrap
    from poolmgr import service

    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=_simulator, args=(args.aggregates * args.hosts, args.hosts,
                                 child))
    proc.start()
    urls = parent.recv()
    with common.scratch_database() as url:
        names = []
        for i, host_url in enumerate(urls):
            names.append("cmp-%04d" % i)
            db_api.register_host(names[-1], host_url)
        conf = bootstrap.build_conf()
        conf(["--config-file", "/dev/null"], project="poolmgr",
             default_config_files=[])
        conf.set_override("connection", url, group="database")
        conf.set_override("connection_username", "root", group="xenserver")
        conf.set_override("connection_password", PASSWORD, group="xenserver")
        conf.set_override("poll_interval", 0.5, group="reconciler")
        conf.set_override("lease_time", 30, group="reconciler")
        # The engine's pool, as the daemon's reconciler worker sizes it.
        db_api.configure(conf, pool_users=service._engine_threads(conf))
        counts = _statements(db_session.get_engine())
        ids = []
        for n in range(args.aggregates):
            ids.append(1000 + n)
            db_api.put_aggregate(
                ids[-1], "pool-%03d" % n,
                names[n * args.hosts:(n + 1) * args.hosts],
                {"hypervisor_pool": "true"})
        counts.clear()
        engine = pool_engine.Engine(conf, owner="profile")
        if not args.no_profile:
            import yappi
            yappi.set_clock_type("cpu")
            yappi.start()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        stop = threading.Event()
        runner = threading.Thread(target=engine.run_forever, args=(stop,))
        runner.start()
        while True:
            pools = db_api.list_pools()
            done = sum(1 for p in pools if p["state"] == "active"
                       and p.get("live_migration_ready"))
            if done == args.aggregates:
                break
            if time.monotonic() - start > 600:
                print("timed out: %d of %d" % (done, args.aggregates))
                break
            time.sleep(0.2)
        makespan = time.monotonic() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        if not args.no_profile:
            yappi.stop()
        stop.set()
        engine.stop()
        runner.join(30)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime -
                                                  cpu0.ru_stime)
        print("makespan %.2f s, engine process CPU %.2f s, %d pools x %d"
              % (makespan, cpu, args.aggregates, args.hosts))
        total = sum(counts.values())
        print("SQL statements: %d (%.1f per pool)" % (
            total, total / args.aggregates))
        for kind, n in counts.most_common(25):
            print("  %6d  %s" % (n, kind))
        if not args.no_profile:
            stats = yappi.get_func_stats()
            stats.sort("ttot")
            if args.ours:
                print("%-60s %7s %8s %8s" % ("poolmgr function", "ncall",
                                             "ttot", "tsub"))
                for stat in [s for s in stats
                             if "/poolmgr/" in s.full_name][:70]:
                    print("%-60s %7d %8.3f %8.3f" % (
                        stat.full_name.split("/poolmgr/")[-1][:60],
                        stat.ncall, stat.ttot, stat.tsub))
            else:
                stats.print_all(out=sys.stdout, columns={
                    0: ("name", 70), 1: ("ncall", 9), 3: ("ttot", 8),
                    4: ("tsub", 8)})
    parent.send("stop")
    proc.join(30)
    os._exit(0)


if __name__ == "__main__":
    main()
