"""poolmgr-manage events list and status."""

from poolmgr.cmd.manage_common import emit
from poolmgr.cmd import views
from poolmgr.db import api as db_api


def events_list(conf, args):
    rows = [views.notification_view(n) for n in
            db_api.list_notifications(limit=args.limit, outcome=args.outcome)]
    emit(args, rows, lambda: views.events_table(rows))


def status(conf, args):
    from poolmgr.nova import sync as novasync
    data = views.status_view(views.all_pool_views(db_api.all_pool_rows()),
                             db_api.intake_totals())
    data["nova_sync"] = novasync.status_view(conf)
    emit(args, data, lambda: views.status_text(data) + "\n"
         + novasync.status_line(data["nova_sync"]))
