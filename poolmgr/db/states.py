"""The states and outcomes stored in the tables, declared once."""






# Notification outcomes, as stored in notifications.outcome.
APPLIED = "applied"
DUPLICATE = "duplicate"
STALE = "stale"
RECORDED = "recorded"
IGNORED = "ignored"
REJECTED = "rejected"

# Pool and member states (ARCHITECTURE.md "States").
POOL_CREATED = "created"
POOL_CHANGING = "changing"
POOL_ACTIVE = "active"
POOL_ERROR = "error"
POOL_DISMISSED = "dismissed"
# The master does not answer, its members do ([xenserver] master_dead_after).
POOL_MASTER_LOST = "master_lost"
POOL_STATES = (POOL_CREATED, POOL_CHANGING, POOL_ACTIVE, POOL_ERROR,
               POOL_DISMISSED, POOL_MASTER_LOST)

MEMBER_PENDING = "pending"
MEMBER_PREFLIGHT = "preflight"
MEMBER_JOINING = "joining"
MEMBER_ACTIVE = "active"
MEMBER_EJECTING = "ejecting"
MEMBER_REMOVED = "removed"
MEMBER_ERROR = "error"
# A master replaced by pool promote: never trusted as master again.
MEMBER_FENCED = "fenced"
# Host maintenance (ARCHITECTURE.md "Operations"): disabled by poolmgr and
# being emptied; then empty (every VM that could move moved).
MEMBER_DRAINING = "draining"
MEMBER_DRAINED = "drained"

# Journal statuses.
OP_STARTED = "started"
OP_SUCCEEDED = "succeeded"
OP_FAILED = "failed"
OP_ABANDONED = "abandoned"

# Maintenance operations (maintenance_operations.kind and .status).
MAINT_DRAIN = "drain"
MAINT_UNDRAIN = "undrain"
MAINT_ROLLING_REBOOT = "rolling_reboot"
MAINT_RUNNING = "running"
MAINT_SUCCEEDED = "succeeded"
MAINT_FAILED = "failed"
