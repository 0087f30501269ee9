"""Live-migration readiness of a pool: shared SR × member matrix.

Pure. xapi lets ``VM.pool_migrate`` land on a host only when the host is
live and enabled and every SR holding the VM's disks has an attached PBD on
it (reference/xapi.md §6). A pool is therefore ready when every member is
live and enabled, it has at least one shared non-ISO SR, and each shared SR
is attached on every member. The same walk yields the repairs poolmgr can
make: plug an unplugged PBD, or create a missing one from another member's
``device_config`` (the way CloudStack's checkSR does).
"""

import dataclasses

ATTACHED = "attached"
UNPLUGGED = "unplugged"
MISSING = "missing"

# NOTE(device_config): xapi strips SRmaster when it copies a master's PBD
# to a new slave (create_storage.ml); the key only makes sense on the master.
_MASTER_ONLY_KEYS = ("SRmaster",)


@dataclasses.dataclass(frozen=True)
class Repair:
    kind: str            # "plug_pbd" or "create_pbd"
    host_ref: str
    sr_ref: str
    sr_name: str
    pbd_ref: str = None
    device_config: dict = None


@dataclasses.dataclass
class Readiness:
    ready: bool
    reasons: list
    matrix: list         # [{uuid, name_label, type, hosts: {name: cell}}]
    repairs: list        # [Repair]
    default_sr_shared: bool = False

    def as_dict(self):
        return {"ready": self.ready, "reasons": list(self.reasons),
                "matrix": self.matrix,
                "default_sr_shared": self.default_sr_shared}


def assess(snapshot, names=None, expected=()):
    """Readiness of ``snapshot`` (a records.PoolSnapshot).

    ``names`` maps host refs to the names to report (compute host names;
    xapi's name_label when absent). ``expected`` lists names that should be
    members but are not (desired hosts not joined yet): they make the pool
    not ready, since Nova would schedule migrations to them.
    """
    names = dict(names or {})
    member_refs = sorted(snapshot.hosts, key=lambda r: (
        r != snapshot.master_ref, names.get(r) or _label(snapshot, r)))
    label = {ref: names.get(ref) or _label(snapshot, ref)
             for ref in member_refs}
    reasons = []
    for name in expected:
        reasons.append("%s is not a member of the pool yet" % name)
    for ref in member_refs:
        if not snapshot.host_live(ref):
            reasons.append("%s is not live" % label[ref])
        if not snapshot.host_enabled(ref):
            reasons.append("%s is disabled" % label[ref])

    shared = snapshot.shared_srs()
    if not shared:
        reasons.append("no shared SR (other than ISO) in the pool")
    matrix, repairs = [], []
    for sr_ref in sorted(shared,
                         key=lambda r: shared[r].get("name_label", "")):
        sr = shared[sr_ref]
        sr_name = sr.get("name_label") or sr.get("uuid") or sr_ref
        cells = {}
        template = _device_config_template(snapshot, sr_ref)
        for ref in member_refs:
            pbd_ref, pbd = snapshot.pbd_for(ref, sr_ref)
            if pbd is None:
                cells[label[ref]] = MISSING
                reasons.append("shared SR %s has no PBD on %s"
                               % (sr_name, label[ref]))
                if template is not None:
                    repairs.append(Repair("create_pbd", ref, sr_ref, sr_name,
                                          device_config=template))
            elif not _attached(pbd):
                cells[label[ref]] = UNPLUGGED
                reasons.append("shared SR %s is not plugged on %s"
                               % (sr_name, label[ref]))
                repairs.append(Repair("plug_pbd", ref, sr_ref, sr_name,
                                      pbd_ref=pbd_ref))
            else:
                cells[label[ref]] = ATTACHED
        matrix.append({"uuid": sr.get("uuid"), "name_label": sr_name,
                       "type": sr.get("type"), "hosts": cells})
    default_sr = snapshot.pool.get("default_SR")
    return Readiness(ready=not reasons, reasons=reasons, matrix=matrix,
                     repairs=repairs, default_sr_shared=default_sr in shared)


def member_complete(snapshot, host_ref):
    """True when the host is live, enabled and sees every shared SR."""
    if not (snapshot.host_live(host_ref) and snapshot.host_enabled(host_ref)):
        return False
    for sr_ref in snapshot.shared_srs():
        _, pbd = snapshot.pbd_for(host_ref, sr_ref)
        if pbd is None or not _attached(pbd):
            return False
    return True


def _attached(pbd):
    value = pbd.get("currently_attached")
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _label(snapshot, ref):
    host = snapshot.hosts.get(ref, {})
    return host.get("name_label") or host.get("hostname") or ref


def _device_config_template(snapshot, sr_ref):
    """A member's device_config for the SR, master first, attached first."""
    candidates = []
    for pbd in snapshot.pbds.values():
        if pbd.get("SR") != sr_ref or pbd.get("host") not in snapshot.hosts:
            continue
        candidates.append((not _attached(pbd),
                           pbd.get("host") != snapshot.master_ref, pbd))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1]))
    config = dict(candidates[0][2].get("device_config") or {})
    for key in _MASTER_ONLY_KEYS:
        config.pop(key, None)
    return config
