"""poolmgr-manage db: sync, version, purge."""

from poolmgr.cmd.manage_common import emit
from poolmgr.db import migration


def db_sync(conf, args):
    migration.upgrade()
    print("database is at revision %s" % migration.version())


def db_version(conf, args):
    print(migration.version() or "None (no schema: run 'db sync')")


def db_purge(conf, args):
    from poolmgr.db import purge
    report = purge.purge(notification_days=args.older_than,
                         journal_days=args.older_than,
                         batch_size=(args.batch_size
                                     or conf.database.purge_batch_size),
                         dry_run=args.dry_run)
    emit(args, report, lambda: _purge_text(report))


def _purge_text(report):
    verb = "would delete" if report["dry_run"] else "deleted"
    key = "would_delete" if report["dry_run"] else "deleted"
    notes, ops = report["notifications"], report["operations"]
    return "\n".join([
        "notifications: %s %d rows received before %s (%d batches of at "
        "most %d)" % (verb, notes[key], notes["older_than"],
                      notes["batches"], report["batch_size"]),
        "journal: %s %d finished rows older than %s (%d batches); kept %d "
        "open and %d newest-per-pool rows" % (
            verb, ops[key], ops["older_than"], ops["batches"],
            ops["kept_open"], ops["kept_newest_per_pool"])])
