"""The canary proof: a small VM live-migrated across every member.

``maybe_prove`` runs at the end of a pass that leaves the pool active when
``[xenserver] canary_vm_template`` is set and the stored proof does not
speak for the pool's members (poolmgr.plan.proof, NOTE(stale), NOTE(once));
``prove_pool`` is ``poolmgr-manage pool prove``. Either way, under the
pool's lease, on the master (reference/operations.md §4, §6 item 4):

1. a canary left by a proof that crashed is destroyed (found by its name
   ``poolmgr-canary-<aggregate id>`` AND its other_config tag, never
   another VM);
2. ``VM.clone`` of the template (its disks stay on their shared SR, as
   ``xe vm-install`` clones a template on shared storage), the tag,
   ``VM.provision``; ``VM.start_on`` the master;
3. for every other member in turn: ``VM.assert_can_boot_here``, then
   ``VM.pool_migrate(live)``, timed;
4. ``VM.hard_shutdown``, ``VDI.destroy`` of its disks, ``VM.destroy``.

Every mutation is journaled and fenced by the lease (engine.journal).
"""

import dataclasses
import time

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.engine import journal
from poolmgr.engine import observe
from poolmgr.plan import planner
from poolmgr.plan import proof
from poolmgr.plan import readiness
from poolmgr.xenapi import errors

LOG = logging.getLogger(__name__)

NULL_REF = "OpaqueRef:NULL"


@dataclasses.dataclass
class CanaryStep:
    """What engine.journal needs of a step: a host and a line."""
    host: str
    text: str

    def describe(self):
        return self.text


class _Refused(Exception):
    """The proof cannot start (no template); not an xapi error."""


# -- when -----------------------------------------------------------------

def maybe_prove(ctx, desired, observed, steps):
    """Prove the pool if this pass leaves it active and no proof speaks for
    its members; the record is stored before the pass's status is written
    (engine.status judges readiness with it)."""
    template = ctx.conf.xenserver.canary_vm_template
    if not template or observed.pool is None or ctx.master_session is None:
        return None
    if ctx.pool_error is not None or any(
            s.kind == planner.BLOCKED for s in steps):
        return None
    if desired is None or not desired.managed or not desired.hosts:
        return None
    members = {m["host"]: m["state"]
               for m in db_api.list_members(ctx.aggregate_id)}
    if any(state == db_api.MEMBER_ERROR for state in members.values()) or \
            not all(members.get(h) == db_api.MEMBER_ACTIVE
                    for h in desired.hosts):
        return None
    record = (db_api.get_pool(ctx.aggregate_id) or {}).get("canary_proof")
    if not proof.needs_proof(record, proof.membership(observed.pool)):
        return None
    record = prove(ctx, observed.pool, observed.names_by_ref(), template)
    # NOTE(release-write): the proof is written with the pass's state, by
    # the UPDATE that releases the lease, so no reader sees a proven pool
    # still 'changing' (and a pass that lost its lease writes neither).
    ctx.release_fields["canary_proof"] = record
    return record


def prove_pool(conf, scheduler, aggregate_id, progress=None):
    """``pool prove``: the proof now, under the lease; returns (record or
    None, message). The pool's readiness is written with it."""
    generation, refused = scheduler.acquire_waiting(aggregate_id)
    if generation is None:
        return None, "; ".join(refused.reasons)
    ctx = context.PassContext(
        aggregate_id, generation, conf=conf, sessions=scheduler.sessions,
        owner=scheduler.owner, progress=progress, cause="pool prove")
    ctx.last_renew = time.monotonic()
    try:
        return _prove_now(ctx, conf.xenserver.canary_vm_template)
    except context.LeaseLost:
        return None, "the pool's lease was lost to another engine"
    finally:
        # NOTE(due): the pool keeps its due time; a proof is not a pass.
        db_api.release_lease(aggregate_id, scheduler.owner, generation)


def _prove_now(ctx, template):
    if not template:
        return None, ("[xenserver] canary_vm_template is not set: there is "
                      "no template to prove live migration with")
    pool_row = db_api.get_pool(ctx.aggregate_id)
    agg, _ = db_api.get_aggregate_for_pass(ctx.aggregate_id)
    desired = context.desired_of(agg)
    if pool_row is None or desired is None:
        return None, "aggregate %s is not a hypervisor pool" % (
            ctx.aggregate_id)
    if pool_row["state"] != db_api.POOL_ACTIVE:
        return None, ("the pool is %s, not active: a proof speaks for an "
                      "active pool only" % pool_row["state"])
    members = {m["host"]: m for m in db_api.list_members(ctx.aggregate_id)}
    observed = observe.observe(ctx, desired, pool_row, members, record=False,
                               lazy=True)
    if observed.pool is None or ctx.master_session is None:
        return None, observed.master_problem or "no pool master reachable"
    names = observed.names_by_ref()
    record = prove(ctx, observed.pool, names, template)
    result = readiness.assess(observed.pool, names=names)
    ready, reasons = proof.judge(record, proof.membership(observed.pool),
                                 result.ready, result.reasons)
    db_api.update_pool(ctx.aggregate_id, canary_proof=record,
                       live_migration_ready=ready, reasons=reasons)
    return record, proof.summary(record)


# -- how ------------------------------------------------------------------

def prove(ctx, snapshot, names, template):
    """Run the proof on ``ctx.master_session``; returns its record.

    Raises LeaseLost (the canary, if any, is then left for the next proof
    to destroy: another engine owns the pool now).
    """
    session = ctx.master_session
    master_ref = snapshot.master_ref

    def label(ref):
        return names.get(ref) or snapshot.hosts.get(ref, {}).get(
            "name_label") or ref

    others = sorted((r for r in snapshot.hosts if r != master_ref), key=label)
    record = {"status": proof.PROVEN, "template": template,
              "at": context.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
              "members": proof.membership(snapshot), "hops": [],
              "failure": None, "leftover": None}
    master = label(master_ref)
    leftover = _destroy_leftovers(ctx, session, master)
    if not others:
        record["status"] = proof.SINGLE
        return record
    vm = None
    try:
        template_ref = _template(session, template)
        vm = journal.mutate(ctx, "canary_create", CanaryStep(
            master, "VM.clone(%s, %s) + VM.provision on master %s" % (
                template, proof.vm_name(ctx.aggregate_id), master)),
            lambda: _create(session, template_ref, ctx.aggregate_id))
        journal.mutate(ctx, "canary_start", CanaryStep(
            master, "VM.start_on(%s, %s)" % (proof.vm_name(ctx.aggregate_id),
                                             master)),
            lambda: session.call("VM.start_on", vm, master_ref, False, False))
    except _Refused as exc:
        _fail(record, "template", None, master, message=str(exc))
    except errors.XapiError as exc:
        _fail(record, "start", None, master, exc)
    where = master_ref
    for target in others if record["failure"] is None else ():
        step = CanaryStep(label(target), "VM.pool_migrate(%s, %s -> %s, "
                          "live)" % (proof.vm_name(ctx.aggregate_id),
                                     label(where), label(target)))
        try:
            seconds = _hop(ctx, session, vm, target, step)
        except errors.XapiError as exc:
            _fail(record, "migrate", label(where), label(target), exc)
            break
        record["hops"].append({"from": label(where), "to": label(target),
                               "seconds": round(seconds, 3)})
        where = target
    if vm is not None:
        leftover = _destroy(ctx, session, vm, master) or leftover
    elif record["failure"] and record["failure"]["step"] == "start":
        # A clone that failed to provision is tagged already.
        leftover = _destroy_leftovers(ctx, session, master) or leftover
    record["leftover"] = leftover
    LOG.info("Pool %s: live migration %s", ctx.aggregate_id,
             proof.summary(record))
    return record


def _hop(ctx, session, vm, target, step):
    try:
        # NOTE(check-first): xapi's own pre-check names the missing piece
        # (VM_REQUIRES_SR, HOST_NOT_ENOUGH_FREE_MEMORY) before anything
        # moves; it mutates nothing, so a refusal is journaled as one row.
        session.call("VM.assert_can_boot_here", vm, target)
    except errors.XapiError as exc:
        journal.record_refusal(ctx, "canary_migrate", step, exc.code,
                               exc.params)
        raise

    def migrate():
        began = time.monotonic()
        session.call("VM.pool_migrate", vm, target, {"live": "true"})
        return time.monotonic() - began
    return journal.mutate(ctx, "canary_migrate", step, migrate)


def _fail(record, step, source, target, exc=None, message=None):
    record["status"] = proof.FAILED
    record["failure"] = {
        "step": step, "from": source, "to": target,
        "code": exc.code if exc is not None else None,
        "params": list(exc.params) if exc is not None else [],
        "message": message, "transient": bool(exc is not None
                                              and exc.transient)}


def _template(session, name):
    refs = [ref for ref in session.call("VM.get_by_name_label", name)
            if session.call("VM.get_is_a_template", ref)]
    if len(refs) != 1:
        raise _Refused("%s VM template named %r in the pool (set [xenserver] "
                       "canary_vm_template to the name_label of exactly one)"
                       % ("no" if not refs else "more than one", name))
    return refs[0]


def _create(session, template_ref, aggregate_id):
    vm = session.call("VM.clone", template_ref, proof.vm_name(aggregate_id))
    # NOTE(tag): the tag goes on at once, so a proof that crashes after
    # this leaves a VM the next proof recognises as its own. A crash
    # between the clone and the tag leaves an untagged clone, which poolmgr
    # never destroys (it could be anyone's): pool history shows the
    # canary_create row left started.
    session.call("VM.add_to_other_config", vm, proof.TAG, str(aggregate_id))
    session.call("VM.provision", vm)
    return vm


def _destroy_leftovers(ctx, session, master):
    name = proof.vm_name(ctx.aggregate_id)
    leftover = None
    for ref in session.call("VM.get_by_name_label", name):
        other_config = session.call("VM.get_other_config", ref) or {}
        if other_config.get(proof.TAG) != str(ctx.aggregate_id):
            continue
        LOG.warning("Pool %s: destroying canary %s left by an earlier "
                    "proof", ctx.aggregate_id, ref)
        leftover = _destroy(ctx, session, ref, master) or leftover
    return leftover


def _destroy(ctx, session, vm, master):
    """Destroy the canary and its disks; None, or what was left behind.

    NOTE(order): the disks first, the VM last: a crash in between leaves a
    tagged VM (found and destroyed next time), never an orphaned disk.
    """
    step = CanaryStep(master, "VM.hard_shutdown + VDI.destroy + VM.destroy "
                      "of %s" % proof.vm_name(ctx.aggregate_id))

    def destroy():
        record = session.call("VM.get_record", vm)
        if record.get("power_state") != "Halted":
            session.call("VM.hard_shutdown", vm)
        for vbd in record.get("VBDs") or []:
            vbd_record = session.call("VBD.get_record", vbd)
            vdi = vbd_record.get("VDI")
            if vbd_record.get("type") == "Disk" and vdi and vdi != NULL_REF:
                session.call("VDI.destroy", vdi)
        session.call("VM.destroy", vm)
    try:
        journal.mutate(ctx, "canary_destroy", step, destroy)
    except errors.XapiError as exc:
        LOG.warning("Pool %s: the canary could not be destroyed: %s",
                    ctx.aggregate_id, exc)
        return "the canary %s could not be destroyed (%s); the next proof " \
               "destroys it" % (proof.vm_name(ctx.aggregate_id), exc)
    return None
