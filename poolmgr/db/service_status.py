"""Small per-service status rows (the Nova sync's last run, ...)."""



from poolmgr.db import models
from poolmgr.db.session import _writer, _reader, _now, _row_dict


def set_service_status(name, value):
    now = _now()
    with _writer() as session:
        row = session.get(models.ServiceStatus, name)
        if row is None:
            session.add(models.ServiceStatus(name=name, value=value,
                                             updated_at=now))
        else:
            row.value = value
            row.updated_at = now


def get_service_status(name):
    with _reader() as session:
        return _row_dict(session.get(models.ServiceStatus, name))
