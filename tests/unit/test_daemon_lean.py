"""The daemon's master imports only what it needs (design/processes.rst).

What the master imports is mapped into every worker it forks; the
libraries are imported by the workers that use them, and the master checks
their options' values in a child (bootstrap.check_config).
"""

import os
import subprocess
import sys

import pytest
from oslo_config import cfg

from poolmgr import bootstrap
from poolmgr import service
from tests.unit import pyrun

HEAVY = ("oslo_messaging", "eventlet", "oslo_service", "oslo_db", "sqlalchemy",
         "keystoneauth1", "requests", "cryptography", "alembic", "kombu",
         "openstack", "poolmgr.db", "poolmgr.engine", "XenAPI")

# cryptography's compiled part: what importing it costs (8 MB).
_RUST = "cryptography.hazmat.bindings._rust"

_MASTER = """
import sys
import cotyledon
from poolmgr.cmd import daemon

def run(self):
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    print("HEAVY", heavy)
    from poolmgr import memory
    print("STANDING", memory.deferred())
    print("OPENSSL", sorted(
        line.split("/")[-1].split(".")[0] for line in open("/proc/self/maps")
        if "libssl" in line or "libcrypto" in line))
    print("SERVICES", sorted(c.service.name
                             for c in self._services.values()))

cotyledon.ServiceManager.run = run
sys.exit(daemon.main(["--config-file", {path!r}]))
"""


def _master(path):
    code = _MASTER.format(heavy=HEAVY, path=str(path))
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)


def _lean_conf(path):
    return bootstrap.prepare_service(
        ["--config-file", str(path)],
        conf=bootstrap.build_conf(libraries=False), setup_logging=False)


def test_master_imports_no_library_a_worker_needs(tmp_path):
    path = tmp_path / "poolmgr.conf"
    path.write_text("[DEFAULT]\ntransport_url = rabbit://u:pw@h/\n"
                    "[database]\nconnection = mysql+pymysql://u:pw@h/db\n"
                    "[nova]\nauth_type = password\n")
    result = _master(path)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    # NOTE(master-tls): nothing on the master's way to sm.run reads ssl or
    # xmlrpc.client, so OpenSSL is not mapped into it.
    assert "STANDING ['rfc3986', 'ssl', 'stevedore', 'xmlrpc.client']" \
        in result.stdout
    assert "OPENSSL []" in result.stdout
    assert "'nova-sync'" in result.stdout
    assert "'intake'" in result.stdout and "'reconciler'" in result.stdout


def test_lean_conf_has_no_library_options(tmp_path):
    path = tmp_path / "poolmgr.conf"
    path.write_text("")
    conf = _lean_conf(path)
    assert conf.reconciler.workers == 1
    with pytest.raises(cfg.NoSuchOptError):
        conf.transport_url
    with pytest.raises(cfg.NoSuchOptError):
        conf.nova.auth_type


@pytest.mark.parametrize("text, option", [
    ("[oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = lots\n",
     "rabbit_qos_prefetch_count"),
    ("[database]\nmax_pool_size = many\n", "max_pool_size"),
    ("[nova]\ntimeout = soon\n", "timeout"),
    ("[reconciler]\nthreads = few\n", "threads"),
])
def test_check_config_refuses_a_bad_library_value(tmp_path, text, option):
    path = tmp_path / "poolmgr.conf"
    path.write_text(text)
    conf = _lean_conf(path)
    with pytest.raises(cfg.Error) as caught:
        bootstrap.check_config(conf)
    assert option in str(caught.value)


def test_check_config_says_whether_nova_is_configured(tmp_path):
    path = tmp_path / "poolmgr.conf"
    path.write_text("[nova]\nauth_type = password\n")
    assert bootstrap.check_config(_lean_conf(path)) == {
        "nova_configured": True}
    path.write_text("")
    assert bootstrap.check_config(_lean_conf(path)) == {
        "nova_configured": False}


def test_each_worker_registers_the_options_it_reads(tmp_path):
    path = tmp_path / "poolmgr.conf"
    path.write_text("[DEFAULT]\ntransport_url = rabbit://u:pw@h/\n"
                    "[nova]\nauth_type = password\n")
    conf = _lean_conf(path)
    service.IntakeService(0, conf)
    assert conf.transport_url == "rabbit://u:pw@h/"
    assert conf.control_exchange == "nova"
    assert conf.oslo_messaging_rabbit.rabbit_qos_prefetch_count == 400
    assert conf.database.max_pool_size is not None
    service.NovaSyncService(0, conf)
    assert conf.nova.auth_type == "password"
    assert conf.nova.timeout == 30
    assert conf.nova.service_type == "compute"


def test_full_conf_is_the_lean_one_plus_the_libraries(tmp_path):
    full, lean = bootstrap.build_conf(), bootstrap.build_conf(libraries=False)
    bootstrap.register_library_opts(lean)
    names = {(group, opt.dest) for group, opt in _all(full)}
    assert names == {(group, opt.dest) for group, opt in _all(lean)}
    assert len(names) > 100


def _all(conf):
    for info, group in conf._all_opt_infos():
        yield (group.name if group else None), info["opt"]


def test_intake_loads_oslo_messaging_without_greendns(tmp_path):
    code = ("import sys; from poolmgr import bootstrap, service; "
            "conf = bootstrap.build_conf(libraries=False); "
            "service.IntakeService(0, conf); import poolmgr.intake; "
            "print(sorted(m for m in ('dns', %r) "
            "if m in sys.modules))" % _RUST)
    env = {k: v for k, v in os.environ.items()
           if k != "EVENTLET_NO_GREENDNS"}
    out = pyrun.stdout_of(code, env=env)
    assert out.strip() == "[]"


def test_reconciler_imports_neither_messaging_nor_alembic():
    # NOTE(lean): importing the engine and PyMySQL (its dialect loaded, as
    # at the first connection) must not bring oslo.messaging/eventlet,
    # keystoneauth1, alembic, nor cryptography's bindings (deferred until
    # a caching_sha2_password RSA exchange, poolmgr.memory), nor
    # SQLAlchemy's SQLite dialect (NOTE(sqlite-dialect)).
    code = ("import sys; from poolmgr import bootstrap, service; "
            "conf = bootstrap.build_conf(libraries=False); "
            "service.ReconcilerService(0, conf); "
            "import poolmgr.db.api, poolmgr.engine, sqlalchemy; "
            "sqlalchemy.create_engine('mysql+pymysql://u@h/db'); "
            "print(sorted(m for m in ('oslo_messaging', 'eventlet', "
            "'keystoneauth1', 'requests', 'alembic', %r, "
            "'openstack', 'sqlalchemy.dialects.sqlite') "
            "if m in sys.modules))" % _RUST)
    out = pyrun.stdout_of(code)
    assert out.strip() == "[]"


def test_intake_runs_oslo_messaging_without_eventlet():
    # NOTE(eventlet): oslo.messaging would import eventlet (oslo.service's
    # default backend, futurist) though the intake runs on threads; the
    # worker keeps it out (poolmgr.memory.without_eventlet) and a
    # notification listener on RabbitMQ's driver still builds.
    code = ("import sys; from poolmgr import bootstrap, service; "
            "conf = bootstrap.build_conf(libraries=False); "
            "service.IntakeService(0, conf); "
            "import oslo_messaging; "
            "from oslo_messaging._drivers import impl_rabbit; "
            "from oslo_service import backend; "
            "transport = oslo_messaging.get_notification_transport("
            "conf, url='rabbit://u:p@127.0.0.1:1/'); "
            "oslo_messaging.get_notification_listener(transport, "
            "[oslo_messaging.Target(topic='t')], [object()], "
            "executor='threading'); "
            "print(sys.modules.get('eventlet'), 'greenlet' in sys.modules, "
            "backend.get_backend_type().value)")
    out = pyrun.stdout_of(code)
    assert out.split() == ["None", "False", "threading"]
