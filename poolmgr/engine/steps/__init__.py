"""One handler per step kind, dispatched from a table.

A handler is ``handler(ctx, step, observed)``: ``ctx`` the pass
(engine.context.PassContext), ``step`` the planner's Step, ``observed``
the observation the plan was made from. Each family of steps lives in its
own module and exports ``HANDLERS = {kind: handler}``; a new family (e.g.
the compute-VM steps) adds its module to ``_FAMILIES``.
"""

from poolmgr.engine.steps import bookkeeping
from poolmgr.engine.steps import compute_vm
from poolmgr.engine.steps import eject
from poolmgr.engine.steps import join
from poolmgr.engine.steps import master
from poolmgr.engine.steps import storage

_FAMILIES = (bookkeeping, join, eject, master, storage, compute_vm)

HANDLERS = {}
for _family in _FAMILIES:
    HANDLERS.update(_family.HANDLERS)


def execute(ctx, step, observed):
    """Run the handler of ``step.kind``; KeyError for an unknown kind."""
    return HANDLERS[step.kind](ctx, step, observed)
