"""The journal: every xapi mutation is written before and after, fenced.

Before a mutating call the lease is renewed at the generation the pass
acquired (``PassContext.fence``): an engine that lost its lease never
touches xapi. The ``operations`` row is written ``started`` before the call
and ``succeeded`` / ``failed`` / ``abandoned`` after it; a row left
``started`` by a crash is closed by the next holder (``abandon_stale``),
which judges the step's effect by observing xapi, never by the row.
"""

import time

from oslo_log import log as logging

from poolmgr.db import api as db_api
from poolmgr.engine import context
from poolmgr.xenapi import errors

LOG = logging.getLogger(__name__)


def mutate(ctx, kind, step, call):
    """Fence, journal, run ``call()`` (one xapi mutation), journal."""
    ctx.fence(doing=step.describe())
    op_id = start(ctx, kind, step)
    try:
        result = call()
        ctx.stepped_at = time.monotonic()
    except errors.XapiError as exc:
        if not finish(ctx, op_id, db_api.OP_FAILED, exc.code, exc.params,
                      kind=kind):
            raise context.LeaseLost() from exc
        exc.host = step.host
        exc.step_kind = kind
        raise
    except BaseException as exc:
        finish(ctx, op_id, db_api.OP_ABANDONED, type(exc).__name__,
               [str(exc)[:200]], kind=kind)
        raise
    if not finish(ctx, op_id, db_api.OP_SUCCEEDED, kind=kind):
        # NOTE(fenced-finish): the call took effect, but the next holder
        # owns the pool (and may have closed this row abandoned); it judges
        # the effect by observing, so this pass stops here.
        raise context.LeaseLost()
    ctx.steps_executed += 1
    return result


def start(ctx, kind, step):
    text = step.describe()
    op_id = db_api.journal_start(
        ctx.aggregate_id, kind, host=step.host, step=text, cause=ctx.cause,
        owner=ctx.owner, generation=ctx.generation)
    report(ctx, {"id": op_id, "kind": kind, "host": step.host, "step": text,
                 "status": db_api.OP_STARTED})
    return op_id


def finish(ctx, op_id, status, code=None, params=None, kind=None):
    """Close our row, fenced; False when the lease went to another holder."""
    written = db_api.journal_finish(
        op_id, status, xapi_error_code=code, xapi_error_params=params,
        owner=ctx.owner, generation=ctx.generation, kind=kind)
    if written:
        report(ctx, {"id": op_id, "kind": None, "host": None, "step": None,
                     "status": status, "xapi_error_code": code,
                     "xapi_error_params": params})
    return written


def record_refusal(ctx, kind, step, code, params):
    """A step refused without calling xapi: one row, failed at once."""
    op_id = start(ctx, kind, step)
    finish(ctx, op_id, db_api.OP_FAILED, code, params)


def report(ctx, op):
    if ctx.progress is not None:
        try:
            ctx.progress(op)
        except Exception:  # noqa: BLE001 - a display must not break us
            LOG.debug("progress callback failed", exc_info=True)


def abandon_stale(ctx):
    for op in db_api.unfinished_operations(ctx.aggregate_id):
        if (op["owner"], op["generation"]) == (ctx.owner, ctx.generation):
            continue
        # NOTE(crash): the step's effect is judged by observing xapi, not
        # by this row; it is closed so history reads cleanly.
        db_api.journal_finish(op["id"], db_api.OP_ABANDONED)
