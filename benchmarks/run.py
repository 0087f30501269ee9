"""Run poolmgr's benchmarks: ``python benchmarks/run.py [options] [NAME...]``.

Prints a table of figures with the goal beside each and writes
``bench-results.json`` (figures + the machine they came from). Figures,
not assertions: the exit code is 0 unless a benchmark crashed.

NAME is a module suffix (``intake``, ``buildout``, ``resync``,
``simulator``); without one every ``benchmarks/bench_*.py`` runs.
``--scale 0.1`` shrinks every workload (for a quick look or CI).
"""

import argparse
import importlib
import inspect
import json
import pathlib
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import common  # noqa: E402

ORDER = ["intake", "buildout", "resync", "simulator"]


def available():
    found = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    return sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER
                                        else len(ORDER), n))


def run_one(name, results, scale):
    module = importlib.import_module("bench_%s" % name)
    kwargs = {}
    if "scale" in inspect.signature(module.run).parameters:
        kwargs["scale"] = scale
    return module.run(results, **kwargs)


def _format(value):
    # NOTE(digits): four significant digits, so a figure just under its
    # goal is not printed as the goal itself (149.6 MB as "150", "met").
    if isinstance(value, float):
        return "%.4g" % value if abs(value) < 1000 else "%.0f" % value
    return str(value)


def table(results):
    rows = [("figure", "value", "unit", "goal", "met")]
    for name, fig in results.items():
        if not isinstance(fig, dict):
            fig = {"value": fig}
        ok = fig.get("ok")
        rows.append((name, _format(fig.get("value")), fig.get("unit", ""),
                     fig.get("goal", ""),
                     "" if ok is None else ("yes" if ok else "NO")))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths))
                     .rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="benchmarks to run (default: all of %s)"
                        % ", ".join(available()))
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every workload by this (default 1)")
    parser.add_argument("--output", default="bench-results.json",
                        help="where to write the JSON (default %(default)s)")
    parser.add_argument("--list", action="store_true",
                        help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available()))
        return 0
    names = args.names or available()
    unknown = set(names) - set(available())
    if unknown:
        parser.error("unknown benchmark(s): %s" % ", ".join(sorted(unknown)))
    results = common.Results()
    failures = {}
    timings = {}
    for name in names:
        print("== %s (scale %g)" % (name, args.scale), flush=True)
        start = time.monotonic()
        try:
            run_one(name, results, args.scale)
        except Exception:  # noqa: BLE001 - report and go on with the rest
            failures[name] = traceback.format_exc()
            print(failures[name], file=sys.stderr, flush=True)
        timings[name] = round(time.monotonic() - start, 1)
        print("   done in %.1fs" % timings[name], flush=True)
    document = {"machine": common.machine(), "scale": args.scale,
                "benchmarks": names, "seconds": timings,
                "results": results, "failures": failures}
    pathlib.Path(args.output).write_text(
        json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    print()
    print(table(results))
    m = document["machine"]
    print("\nmachine: %s, %s cores, %s GB RAM, Python %s, %s"
          % (m["cpu"], m["cores"], m["ram_gb"], m["python"], m["date"]))
    print("written to %s" % args.output)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
