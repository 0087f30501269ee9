"""In-process profile of the intake's aggregate path (no bus), on MySQL.

``python benchmarks/profile_intake.py [--profile] [--batches N]`` builds
FakeNova's stream (legacy and versioned, 5 % copies) as the dispatcher hands
it to the endpoint, and times ``AggregateEndpoint.process_batch`` (parsing,
folding, one transaction per batch of 200) into a scratch database holding
100,000 notification rows: microseconds per message, and with ``--profile``
the top of cProfile's cumulative listing. It measures the part of
``intake_ratio`` poolmgr adds to the bus, in seconds instead of minutes.
"""

import argparse
import cProfile
import datetime
import gc
import pstats
import random
import sys
import time
import uuid


import bench_intake
import common
from poolmgr.simulator import fakenova
from poolmgr import intake

BATCH = 200


def stream(count, rng):
    """Dispatcher-shaped messages: ctxt, publisher, type, payload, meta."""
    nova = fakenova.FakeNova(None, first_id=rng.randint(1000, 10 ** 6))
    n = 0
    while len(nova.sent) < count:
        agg = nova.create_aggregate("prof-%04d" % n)
        nova.set_metadata(agg, {"hypervisor_pool": "true"})
        for h in range(bench_intake.HOSTS_PER_AGGREGATE):
            nova.add_host(agg, "cmp-%04d-%d" % (n, h))
        n += 1
    messages = []
    start = datetime.datetime.utcnow()
    for i, (_, event_type, publisher_id, payload) in enumerate(nova.sent):
        ts = start + datetime.timedelta(microseconds=i * 37)
        messages.append({
            "ctxt": {"request_id": "req-%s" % uuid.uuid4()},
            "publisher_id": publisher_id, "event_type": event_type,
            "payload": payload,
            "metadata": {"message_id": str(uuid.uuid4()),
                         "timestamp": str(ts)}})
    copies = rng.sample(messages, int(len(messages) * 0.05))
    for copy in copies:
        messages.insert(rng.randint(0, len(messages)), copy)
    return messages


def _gc_timer():
    """[seconds spent in collections], from now on."""
    total, started = [0.0], [0.0]

    def callback(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            total[0] += time.perf_counter() - started[0]
    gc.callbacks.append(callback)
    return total


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--freeze", action="store_true",
                        help="gc.freeze() before the batches")
    args = parser.parse_args(argv)
    messages = stream(args.messages, random.Random(20261201))
    batches = [messages[i:i + BATCH] for i in range(0, len(messages), BATCH)]
    with common.scratch_database():
        bench_intake._fill(args.prefill)
        endpoint = intake.AggregateEndpoint(counter_interval=3600)
        profiler = cProfile.Profile() if args.profile else None
        if args.freeze:
            gc.freeze()
        gc_seconds = _gc_timer()
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for batch in batches:
            endpoint.process_batch(batch)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        gc.callbacks.clear()
    print("%d messages in %d batches: %.1f us CPU, %.1f us wall per message"
          " (%.1f us of it in the garbage collector)"
          % (len(messages), len(batches), cpu / len(messages) * 1e6,
             wall / len(messages) * 1e6, gc_seconds[0] / len(messages) * 1e6))
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(
            "cumulative").print_stats(45)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(
            "tottime").print_stats(30)


if __name__ == "__main__":
    main()
