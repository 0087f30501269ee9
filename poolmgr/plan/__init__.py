"""The pure part: desired + observed -> ordered steps.

- :mod:`poolmgr.plan.desired`: folding notifications and API snapshots
  into the desired state;
- :mod:`poolmgr.plan.planner`: ``plan_pool_changes``; its vocabulary
  (:mod:`poolmgr.plan.steps`) and the compute VM rules
  (:mod:`poolmgr.plan.computevm_rules`, :mod:`poolmgr.plan.computevm`);
- :mod:`poolmgr.plan.preflight`: xapi's join checks, all at once;
- :mod:`poolmgr.plan.readiness`: live-migration readiness.

Nothing here imports the database, an xapi session or the network: each
module takes plain data (xapi records as ``poolmgr.xenapi.records`` keeps
them) and returns plain data, so its tests need no server.
"""
