"""pytest fixtures: a real Nova 34 control plane (tests/realnova/novactl.py).

``real_nova`` (session) starts it once with the compute hosts in
``HOSTS``; ``nova`` (per test) hands it over with no aggregate left from an
earlier test. Without a usable Nova venv (``tests/realnova/install.sh``) a
test needing it is skipped with the reason, or fails under
POOLMGR_REQUIRE_SERVICES=1.
"""

import os

import pytest

from tests import conftest as services
from tests.realnova import novactl

HOSTS = tuple(os.environ.get("POOLMGR_NOVA_HOSTS",
                             "compute1,compute2,compute3,compute4").split(","))


def _mysql_tuple():
    import urllib.parse
    parsed = urllib.parse.urlparse(services.MYSQL_URL.replace(
        "mysql+pymysql://", "mysql://"))
    return (parsed.hostname or "127.0.0.1", parsed.port or 3306,
            parsed.username or "root", parsed.password or "")


def _rabbit_tuple(url):
    import urllib.parse
    parsed = urllib.parse.urlparse(url.replace("rabbit://", "amqp://", 1))
    return (parsed.hostname or "127.0.0.1", parsed.port or 5672,
            parsed.username or "guest", parsed.password or "guest")


@pytest.fixture(scope="session")
def real_nova(mysql_server, rabbit_url):
    """A started RealNova; at the end stopped, its DBs and vhost dropped."""
    venv = novactl.default_venv()
    problem = novactl.venv_problem(venv)
    if problem:
        services.service_unavailable("a real Nova (venv %s)" % venv, problem)
    nova = novactl.RealNova(HOSTS, venv=venv, mysql=_mysql_tuple(),
                            rabbit=_rabbit_tuple(rabbit_url))
    try:
        nova.start()
    except novactl.NovaUnavailable as exc:
        services.service_unavailable("a real Nova", str(exc)[:2000])
    yield nova
    nova.stop()


@pytest.fixture
def nova(real_nova):
    """The real Nova, with no aggregate and nova-api answering."""
    real_nova.resume_api()
    real_nova.clear_aggregates()
    yield real_nova
    real_nova.resume_api()
