"""The Nova API client: list aggregates and compute services, write metadata.

A keystoneauth1 session loaded from ``[nova]`` (any auth plugin: password,
v3applicationcredential, admin_token with endpoint_override, ...) under
openstacksdk's compute proxy, the way OpenStack services call one another.
Failures come out as ``NovaError`` with one line that names no secret.
"""

import dataclasses
import datetime

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from oslo_log import log as logging
from oslo_utils import strutils
from oslo_utils import timeutils

GROUP = "nova"

LOG = logging.getLogger(__name__)


class NovaError(Exception):
    """Nova could not be reached, or refused the request."""


class NovaUnauthorized(NovaError):
    """Nova (or Keystone) refused the credentials."""


class NovaUnreachable(NovaError):
    """No answer from Nova (connection refused, timeout, no endpoint)."""


class NovaNotFound(NovaError):
    """The aggregate asked for does not exist (any more)."""


def configured(conf):
    """True when ``[nova]`` names an auth plugin."""
    return bool(conf[GROUP].auth_type)


@dataclasses.dataclass(frozen=True)
class Listing:
    """One GET /os-aggregates: what Nova said, and when we asked.

    ``started_at`` is taken before the request is sent (naive UTC), so
    anything Nova committed before it is in the listing; a notification
    stamped later may be newer than the listing and wins (desired.py).
    """

    started_at: datetime.datetime
    aggregates: tuple  # of dicts: id, uuid, name, hosts (list), metadata


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return strutils.mask_password(text[0] if text else type(exc).__name__)


class NovaClient:
    """One authenticated connection to the compute API; reuse it."""

    def __init__(self, conf):
        if not configured(conf):
            raise NovaError("[nova] is not configured (no auth_type)")
        self.conf = conf
        try:
            auth = ks_loading.load_auth_from_conf_options(conf, GROUP)
            self.session = ks_loading.load_session_from_conf_options(
                conf, GROUP, auth=auth)
        except ks_exc.ClientException as exc:
            raise NovaError("[nova] options: %s" % _one_line(exc))
        self._conn = None
        self.calls = 0

    @property
    def compute(self):
        if self._conn is None:
            from openstack import connection
            # NOTE(sdk): oslo_conf makes openstacksdk read the adapter
            # options (endpoint_override, region_name, valid_interfaces,
            # service_type, ...) from the [nova] section itself.
            self._conn = connection.Connection(
                session=self.session, oslo_conf=self.conf,
                service_types={"compute"})
        return self._conn.compute

    def _call(self, what, func, *args, **kwargs):
        from openstack import exceptions as sdk_exc
        self.calls += 1
        try:
            return func(*args, **kwargs)
        except (ks_exc.Unauthorized, ks_exc.Forbidden) as exc:
            raise NovaUnauthorized("Nova refused the credentials (%s): %s"
                                   % (what, _one_line(exc)))
        except sdk_exc.NotFoundException as exc:
            raise NovaNotFound("%s: %s" % (what, _one_line(exc)))
        except sdk_exc.HttpException as exc:
            if exc.status_code in (401, 403):
                raise NovaUnauthorized(
                    "Nova refused the credentials (%s): HTTP %s"
                    % (what, exc.status_code))
            raise NovaError("%s: HTTP %s: %s" % (
                what, exc.status_code, _one_line(exc)))
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout,
                ks_exc.RequestTimeout, ks_exc.DiscoveryFailure,
                ks_exc.EndpointNotFound, ks_exc.ClientException) as exc:
            raise NovaUnreachable("Nova is unreachable (%s): %s" % (
                what, _one_line(exc)))
        except sdk_exc.SDKException as exc:
            raise NovaError("%s: %s" % (what, _one_line(exc)))

    def list_aggregates(self):
        """Every aggregate, hosts in Nova's order: a ``Listing``."""
        started_at = timeutils.utcnow()

        def fetch():
            return [_aggregate_dict(a) for a in self.compute.aggregates()]

        aggregates = self._call("GET /os-aggregates", fetch)
        return Listing(started_at=started_at, aggregates=tuple(aggregates))

    def compute_hosts(self):
        """Host names of every nova-compute service Nova knows."""

        def fetch():
            return sorted({s.host for s in self.compute.services(
                binary="nova-compute")})

        return self._call("GET /os-services", fetch)

    def set_compute_service(self, host, enabled, reason=None):
        """Enable or disable (with ``reason``) the host's nova-compute.

        openstacksdk sends PUT /os-services/{id} with ``status`` (and
        ``disabled_reason``) at microversion 2.53 or later, the older
        /os-services/disable-log-reason before.
        """
        what = "PUT /os-services (%s of %s)" % (
            "enable" if enabled else "disable", host)

        def change():
            services = list(self.compute.services(binary="nova-compute",
                                                  host=host))
            if not services:
                from openstack import exceptions as sdk_exc
                raise sdk_exc.NotFoundException(
                    "no nova-compute service on host %s" % host)
            if enabled:
                service = self.compute.enable_service(services[0])
            else:
                service = self.compute.disable_service(
                    services[0], disabled_reason=reason)
            return {"id": service.id, "host": host,
                    "status": service.status,
                    "disabled_reason": service.disabled_reason}

        return self._call(what, change)

    def update_metadata(self, aggregate_id, changes):
        """One set_metadata call; a None value deletes that key."""
        result = self._call(
            "POST /os-aggregates/%s/action set_metadata" % aggregate_id,
            self.compute.set_aggregate_metadata, aggregate_id, changes)
        return _aggregate_dict(result)


def _aggregate_dict(agg):
    return {"id": int(agg.id), "uuid": agg.uuid, "name": agg.name,
            "hosts": list(agg.hosts or []),
            "metadata": dict(agg.metadata or {})}
