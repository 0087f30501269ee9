"""The event calls (§7): event.from, event.inject, event.get_current_id.

``EventCalls`` is a mixin of poolmgr.simulator.api's ``Api``, which
builds its message table from these methods; ``self.world`` is the Api's
World.
"""

import time

from poolmgr.simulator.model import EVENT_CLASSES
from poolmgr.simulator.model import Failure


class EventCalls:
    """event.from (with the pool database's generations), event.inject,
    event.get_current_id."""

    # -- events (§7) ----------------------------------------------------------

    def event_from(self, host, session, classes, token, timeout):
        world, db = self.world, host.db
        if token == "":
            since = -1
        else:
            try:
                since = int(str(token).split(",")[0])
            except ValueError:
                raise Failure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)
        wanted = set()
        refs = set()
        for sub in classes:
            name, _, ref = str(sub).partition("/")
            name = name.lower()
            if name == "*":
                wanted.update(EVENT_CLASSES)
            elif name in EVENT_CLASSES:
                if ref:
                    refs.add(ref)
                else:
                    wanted.add(name)
            elif name != "message":
                raise Failure("EVENT_SUBSCRIPTION_PARSE_FAILURE", sub)
        deadline = time.monotonic() + max(float(timeout), 0.0)
        while True:
            batch = self._events(db, since, wanted, refs)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or host.db is not db:
                break
            world.changed.wait(remaining)
        return {"events": batch,
                "valid_ref_counts": {
                    cls: str(len(db.tables[EVENT_CLASSES[cls]]))
                    for cls in sorted(wanted)},
                "token": "%020d,%020d" % (db.generation, 0)}

    def event_inject(self, host, session, cls, ref):
        db = host.db
        table = EVENT_CLASSES.get(str(cls).lower())
        if table is None or ref not in db.tables[table]:
            raise Failure("HANDLE_INVALID", cls, ref)
        db.touch(ref)
        return "%020d,%020d" % (db.generation, 0)

    def event_get_current_id(self, host, session):
        return host.db.generation

    def _events(self, db, since, wanted, refs):
        batch = []
        for name in sorted(EVENT_CLASSES):
            cls = EVENT_CLASSES[name]
            for ref in db.tables[cls]:
                if name not in wanted and ref not in refs:
                    continue
                if db.modified.get(ref, 0) <= since:
                    continue
                op = "add" if db.created.get(ref, 0) > since else "mod"
                batch.append({"id": str(db.modified[ref]),
                              "timestamp": "0.0", "class": name,
                              "operation": op, "ref": ref,
                              "snapshot": db.record(cls, ref)})
        for gen, name, ref, created in db.deleted:
            if gen > since and created <= since and since >= 0 and (
                    name.lower() in wanted or ref in refs):
                batch.append({"id": str(gen), "timestamp": "0.0",
                              "class": name.lower(), "operation": "del",
                              "ref": ref})
        return batch
