"""Count the SQL statements each process of a daemon sends (a benchmark aid).

``python benchmarks/sqlcount.py DIR poolmgr --config-file F`` runs the
daemon (``poolmgr.cmd.daemon:main``) with a SQLAlchemy
``before_cursor_execute`` listener on every engine its workers create.
Each process writes ``DIR/<pid>.json`` (its title, its statements so far,
by verb and table) at most every 0.1 s while it sends statements;
``read(DIR)`` sums them by process title.

The listener is attached when a worker first imports ``poolmgr.db.session``
(NOTE(lazy-hook)), so the master, which never imports SQLAlchemy
(NOTE(lean) in poolmgr.bootstrap), does not map it for this count either:
the daemon's RSS is the same as without the count.
"""

import collections
import importlib.abc
import importlib.machinery
import json
import os
import pathlib
import sys
import threading
import time

TARGET = "poolmgr.db.session"
DUMP_EVERY = 0.1


class _State:
    pid = None
    counts = None
    lock = None
    directory = None
    dirty = False


def _kind(statement):
    """"VERB table" of a statement: UPDATE's table, INSERT's INTO, else
    the first FROM."""
    words = statement.split()
    verb = words[0].upper() if words else "?"
    key = {"UPDATE": "UPDATE", "INSERT": "INTO"}.get(verb, "FROM")
    upper = [w.upper() for w in words]
    if key in upper[:-1]:
        return "%s %s" % (verb, words[upper.index(key) + 1].strip("`"))
    return verb


def _title():
    try:
        return pathlib.Path("/proc/self/cmdline").read_bytes().replace(
            b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def _dump():
    with _State.lock:
        if not _State.dirty:
            return
        _State.dirty = False
        data = {"pid": os.getpid(), "title": _title(),
                "statements": sum(_State.counts.values()),
                "by_kind": dict(_State.counts)}
    path = pathlib.Path(_State.directory) / ("%d.json" % os.getpid())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _dumper():
    while True:
        time.sleep(DUMP_EVERY)
        _dump()


def _count(conn, cursor, statement, parameters, context, executemany):
    if _State.pid != os.getpid():
        # NOTE(fork): a forked worker starts its own count and its own
        # writer thread (threads do not survive a fork).
        _State.pid = os.getpid()
        _State.counts = collections.Counter()
        _State.lock = threading.Lock()
        threading.Thread(target=_dumper, daemon=True).start()
    with _State.lock:
        _State.counts[_kind(statement)] += 1
        _State.dirty = True


def _listen():
    import sqlalchemy as sa
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _count)


class _Hook(importlib.abc.MetaPathFinder):
    """NOTE(lazy-hook): attaches the listener right after TARGET loads."""

    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_listen(module):
            exec_module(module)
            _listen()
        loader.exec_module = exec_and_listen
        sys.meta_path.remove(self)
        return spec


def install(directory):
    _State.directory = str(directory)
    sys.meta_path.insert(0, _Hook())


def read(directory):
    """{title: {"statements": n, "by_kind": {...}}} summed over pids."""
    found = {}
    for path in pathlib.Path(directory).glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        entry = found.setdefault(data["title"], {"statements": 0,
                                                 "by_kind": {}})
        entry["statements"] += data["statements"]
        for kind, n in data["by_kind"].items():
            entry["by_kind"][kind] = entry["by_kind"].get(kind, 0) + n
    return found


def reconciler(directory):
    """(statements, {kind: n}) of the daemon's reconciler worker(s)."""
    total, kinds = 0, collections.Counter()
    for title, entry in read(directory).items():
        if "reconciler" in title:
            total += entry["statements"]
            kinds.update(entry["by_kind"])
    return total, kinds


def main():
    directory, program = sys.argv[1], sys.argv[2]
    install(directory)
    sys.argv = [program] + sys.argv[3:]
    from poolmgr.cmd import daemon
    return daemon.main()


if __name__ == "__main__":
    sys.exit(main())
