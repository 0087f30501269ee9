"""Run a real Nova 34 control plane for tests (see tests/realnova/README).

Everything runs from the Nova venv built by ``tests/realnova/install.sh``:
placement and nova-api served by the stdlib's wsgiref (``novaside/
serve_wsgi.py``), nova-conductor, and one fake-driver nova-compute per host
name. Each run gets fresh MariaDB databases and a RabbitMQ vhost of its own
(FakeDriver invents node uuids at every start, so old databases refuse a
restarted compute); ``stop()`` ends the processes it started and drops both.

    python -m tests.realnova.novactl [HOST ...]   # start, print, wait ^C
"""

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent.parent
TOKEN = "poolmgr-realnova-admin"


def default_venv():
    return pathlib.Path(os.environ.get("POOLMGR_NOVA_VENV",
                                       TOP / ".nova-venv"))


class NovaUnavailable(Exception):
    """The Nova venv is missing or broken, or Nova would not start."""


def venv_problem(venv):
    """Why ``venv`` cannot run Nova, or None when it can."""
    venv = pathlib.Path(venv)
    for tool in ("python", "nova-manage", "nova-conductor", "nova-compute",
                 "placement-manage"):
        if not (venv / "bin" / tool).exists():
            return ("%s has no bin/%s (run tests/realnova/install.sh, or "
                    "set POOLMGR_NOVA_VENV)" % (venv, tool))
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.metadata as m, nova.wsgi, placement.wsgi, pymysql;"
         "print(m.version('nova'))"], capture_output=True, text=True,
        timeout=120)
    if probe.returncode != 0:
        return "%s cannot import nova: %s" % (
            venv, (probe.stderr.strip().splitlines() or ["?"])[-1])
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port):
    with contextlib.suppress(OSError):
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    return False


class RealNova:
    """One Nova control plane; ``start()`` then ``stop()``.

    ``hosts``: the compute host names (one fake-driver nova-compute each).
    ``mysql``: (host, port, user, password) of the MariaDB server.
    ``rabbit``: (host, port, user, password) of RabbitMQ.
    """

    def __init__(self, hosts, venv=None, mysql=("127.0.0.1", 3306, "root",
                                                ""),
                 rabbit=("127.0.0.1", 5672, "guest", "guest"), workdir=None,
                 debug=False):
        self.hosts = list(hosts)
        self.venv = pathlib.Path(venv or default_venv())
        self.mysql = mysql
        self.rabbit = rabbit
        self.debug = debug
        self.tag = uuid.uuid4().hex[:8]
        self.vhost = "poolmgr_nova_%s" % self.tag
        self.databases = {k: "pmnova_%s_%s" % (self.tag, k)
                          for k in ("api", "cell0", "cell1", "placement")}
        self._own_workdir = workdir is None
        # Made by start(): a RealNova used only for its API helpers leaves
        # nothing behind.
        self.workdir = pathlib.Path(workdir) if workdir else None
        self.api_port = None
        self.placement_port = None
        self.procs = {}
        self.timings = {}
        self._created_dbs = []
        self._vhost_created = False

    # -- what tests use ----------------------------------------------------

    @property
    def endpoint(self):
        """The compute endpoint (``endpoint_override`` for keystoneauth)."""
        return "http://127.0.0.1:%d/v2.1" % self.api_port

    @property
    def token(self):
        return TOKEN

    @property
    def transport_url(self):
        host, port, user, password = self.rabbit
        return "rabbit://%s:%s@%s:%d/%s" % (user, password, host, port,
                                            self.vhost)

    # Nova's notification target: its control_exchange and topics.
    exchange = "nova"
    versioned_topic = "versioned_notifications"
    legacy_topic = "notifications"

    def request(self, method, path, body=None, microversion="latest",
                token=None, timeout=30):
        """One call to nova-api; returns (status, decoded JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.endpoint + path, data=data, method=method, headers={
                "X-Auth-Token": token or TOKEN,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "OpenStack-API-Version": "compute %s" % microversion,
                "X-OpenStack-Nova-API-Version": microversion})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def call(self, method, path, body=None, ok=(200, 201, 202, 204)):
        status, result = self.request(method, path, body)
        if status not in ok:
            raise AssertionError("nova %s %s -> %s %s" % (method, path,
                                                          status, result))
        return result

    # Aggregate helpers (the operator's side, as the openstack CLI calls).
    def create_aggregate(self, name, zone=None):
        body = {"aggregate": {"name": name}}
        if zone:
            body["aggregate"]["availability_zone"] = zone
        return self.call("POST", "/os-aggregates", body)["aggregate"]

    def set_metadata(self, agg_id, metadata):
        return self.call("POST", "/os-aggregates/%s/action" % agg_id,
                         {"set_metadata": {"metadata": metadata}})[
            "aggregate"]

    def add_host(self, agg_id, host):
        return self.call("POST", "/os-aggregates/%s/action" % agg_id,
                         {"add_host": {"host": host}})["aggregate"]

    def remove_host(self, agg_id, host):
        return self.call("POST", "/os-aggregates/%s/action" % agg_id,
                         {"remove_host": {"host": host}})["aggregate"]

    def rename(self, agg_id, name):
        return self.call("PUT", "/os-aggregates/%s" % agg_id,
                         {"aggregate": {"name": name}})["aggregate"]

    def delete_aggregate(self, agg_id):
        self.call("DELETE", "/os-aggregates/%s" % agg_id)

    def get_aggregate(self, agg_id):
        return self.call("GET", "/os-aggregates/%s" % agg_id)["aggregate"]

    def aggregates(self):
        return self.call("GET", "/os-aggregates")["aggregates"]

    def clear_aggregates(self):
        """Delete every aggregate (emptying it first), between tests."""
        for agg in self.aggregates():
            for host in agg["hosts"]:
                self.remove_host(agg["id"], host)
            self.delete_aggregate(agg["id"])

    def api_calls(self, method=None, path_part="os-aggregates"):
        """nova-api's request log lines (method, path, status)."""
        calls = []
        if self.workdir is None:
            return calls
        log = self.workdir / "nova-api.log"
        if not log.exists():
            return calls
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("wsgi "):
                continue
            parts = line.split('"')
            if len(parts) < 3:
                continue
            request = parts[1].split()
            status = parts[2].split()[0] if parts[2].split() else ""
            if len(request) >= 2 and path_part in request[1] and (
                    method is None or request[0] == method):
                calls.append((request[0], request[1], status))
        return calls

    def pause_api(self):
        """SIGSTOP nova-api (it accepts connections, never answers)."""
        os.kill(self.procs["nova-api"].pid, signal.SIGSTOP)

    def resume_api(self):
        os.kill(self.procs["nova-api"].pid, signal.SIGCONT)

    def rss_mb(self):
        """{process name: resident MiB, children included}."""
        import psutil
        result = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(proc.pid)
                procs = [parent] + parent.children(recursive=True)
                result[name] = sum(p.memory_info().rss for p in procs) / 2**20
        return result

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout=240):
        problem = venv_problem(self.venv)
        if problem:
            raise NovaUnavailable(problem)
        started = self._started = time.monotonic()
        if self.workdir is None:
            self.workdir = pathlib.Path(tempfile.mkdtemp(
                prefix="poolmgr-nova-"))
        try:
            self._setup_rabbit()
            self._setup_databases()
            self._write_configs()
            self.timings["prepare_s"] = time.monotonic() - started
            self._sync_databases()
            self.timings["db_sync_s"] = (time.monotonic() - started
                                         - self.timings["prepare_s"])
            self._start_services()
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["start_s"] = time.monotonic() - started
        return self

    def stop(self):
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = {}
        self._drop_databases()
        self._drop_rabbit()
        if self._own_workdir and self.workdir is not None and not \
                os.environ.get("POOLMGR_NOVA_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- steps ---------------------------------------------------------------

    def _rabbitmqctl(self, *args):
        return subprocess.run(["rabbitmqctl", "-q", *args],
                              capture_output=True, text=True, timeout=60)

    def _setup_rabbit(self):
        out = self._rabbitmqctl("add_vhost", self.vhost)
        if out.returncode != 0:
            raise NovaUnavailable("rabbitmqctl add_vhost failed: %s"
                                  % out.stderr.strip())
        self._vhost_created = True
        user = self.rabbit[2]
        out = self._rabbitmqctl("set_permissions", "-p", self.vhost, user,
                                ".*", ".*", ".*")
        if out.returncode != 0:
            raise NovaUnavailable("rabbitmqctl set_permissions failed: %s"
                                  % out.stderr.strip())

    def _drop_rabbit(self):
        if self._vhost_created:
            self._rabbitmqctl("delete_vhost", self.vhost)
            self._vhost_created = False

    def _mysql(self):
        import pymysql
        host, port, user, password = self.mysql
        return pymysql.connect(host=host, port=port, user=user,
                               password=password, autocommit=True)

    def _setup_databases(self):
        with contextlib.closing(self._mysql()) as conn:
            with conn.cursor() as cur:
                for name in self.databases.values():
                    cur.execute("CREATE DATABASE %s CHARACTER SET utf8mb4"
                                % name)
                    self._created_dbs.append(name)

    def _drop_databases(self):
        if not self._created_dbs:
            return
        with contextlib.suppress(Exception):
            with contextlib.closing(self._mysql()) as conn:
                with conn.cursor() as cur:
                    for name in self._created_dbs:
                        cur.execute("DROP DATABASE IF EXISTS %s" % name)
            self._created_dbs = []

    def _db_url(self, key):
        host, port, user, password = self.mysql
        auth = user + (":" + password if password else "")
        return "mysql+pymysql://%s@%s:%d/%s?charset=utf8" % (
            auth, host, port, self.databases[key])

    def _common(self, host):
        return textwrap.dedent("""\
            [DEFAULT]
            host = {host}
            transport_url = {transport}
            state_path = {state}
            my_ip = 127.0.0.1
            debug = {debug}
            compute_driver = fake.FakeDriver
            use_rootwrap_daemon = false
            [oslo_concurrency]
            lock_path = {state}/lock
            [os_brick]
            lock_path = {state}/lock
            [placement]
            auth_type = admin_token
            endpoint_override = http://127.0.0.1:{placement_port}
            token = admin
            [oslo_messaging_notifications]
            driver = messagingv2
            [notifications]
            notification_format = both
            [oslo_messaging_rabbit]
            amqp_durable_queues = true
            [wsgi]
            api_paste_config = {paste}
            [conductor]
            workers = 1
            [api]
            max_limit = 10000
            """).format(host=host, transport=self.transport_url,
                        state=self.workdir / ("state-" + host),
                        debug=str(self.debug).lower(),
                        placement_port=self.placement_port,
                        paste=self.workdir / "api-paste.ini")

    def _write_configs(self):
        self.api_port = free_port()
        self.placement_port = free_port()
        work = self.workdir
        (work / "placement").mkdir(exist_ok=True)
        (work / "placement" / "placement.conf").write_text(textwrap.dedent(
            """\
            [DEFAULT]
            debug = false
            [api]
            auth_strategy = noauth2
            [placement_database]
            connection = {db}
            """).format(db=self._db_url("placement")))
        paste = (self.venv / "etc" / "nova" / "api-paste.ini").read_text()
        if " authtoken keystonecontext" not in paste:
            raise NovaUnavailable("unexpected api-paste.ini in %s"
                                  % self.venv)
        paste = paste.replace(" authtoken keystonecontext",
                              " poolmgrauth keystonecontext")
        paste += ("\n[filter:poolmgrauth]\n"
                  "paste.filter_factory = fakeauth:filter_factory\n"
                  "token = %s\n" % TOKEN)
        (work / "api-paste.ini").write_text(paste)
        control = self._common("nova-control") + textwrap.dedent("""\
            [api_database]
            connection = {api}
            [database]
            connection = {cell1}
            """).format(api=self._db_url("api"), cell1=self._db_url("cell1"))
        (work / "nova.conf").write_text(control)
        for host in self.hosts:
            # NOTE(no-db): as devstack's nova-cpu.conf: a compute with
            # database credentials logs "No DB access allowed".
            (work / ("nova-cpu-%s.conf" % host)).write_text(
                self._common(host))
            (work / ("state-" + host) / "lock").mkdir(parents=True,
                                                      exist_ok=True)
        (work / "state-nova-control" / "lock").mkdir(parents=True,
                                                     exist_ok=True)

    def _env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OS_", "PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = "%s:%s" % (self.venv / "bin", env.get("PATH", ""))
        env["PYTHONPATH"] = str(HERE / "novaside")
        env["OS_NOVA_CONFIG_DIR"] = str(self.workdir)
        env["OS_PLACEMENT_CONFIG_DIR"] = str(self.workdir / "placement")
        return env

    def _run(self, *argv, conf=None):
        cmd = [str(self.venv / "bin" / argv[0])]
        if argv[0] == "nova-manage":
            cmd += ["--config-file", str(conf or self.workdir / "nova.conf")]
        cmd += list(argv[1:])
        out = subprocess.run(cmd, capture_output=True, text=True,
                             env=self._env(), timeout=300)
        if out.returncode != 0:
            raise NovaUnavailable("%s failed (%d): %s" % (
                " ".join(argv), out.returncode, out.stderr[-2000:]))
        return out.stdout

    def _sync_databases(self):
        env = self._env()
        # Placement's schema is independent of nova's: sync it alongside.
        placement = subprocess.Popen(
            [str(self.venv / "bin" / "placement-manage"), "--config-file",
             str(self.workdir / "placement" / "placement.conf"), "db",
             "sync"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self._run("nova-manage", "api_db", "sync")
        self._run("nova-manage", "cell_v2", "map_cell0",
                  "--database_connection", self._db_url("cell0"))
        self._run("nova-manage", "cell_v2", "create_cell", "--name", "cell1")
        self._run("nova-manage", "db", "sync")
        out, _ = placement.communicate(timeout=300)
        if placement.returncode != 0:
            raise NovaUnavailable("placement-manage db sync failed: %s"
                                  % out[-2000:])

    def _spawn(self, name, argv):
        log = open(self.workdir / ("%s.log" % name), "ab")
        with log:
            self.procs[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                cwd=self.workdir, start_new_session=True)

    def _start_services(self):
        python = str(self.venv / "bin" / "python")
        serve = str(HERE / "novaside" / "serve_wsgi.py")
        self._spawn("placement", [python, serve, "placement.wsgi.api",
                                  "127.0.0.1", str(self.placement_port)])
        self._spawn("nova-api", [python, serve, "nova.wsgi.osapi_compute",
                                 "127.0.0.1", str(self.api_port)])
        self._spawn("nova-conductor", [
            str(self.venv / "bin" / "nova-conductor"), "--config-file",
            str(self.workdir / "nova.conf")])
        for host in self.hosts:
            self._spawn("nova-compute-%s" % host, [
                str(self.venv / "bin" / "nova-compute"), "--config-file",
                str(self.workdir / ("nova-cpu-%s.conf" % host))])

    def _check_alive(self):
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / ("%s.log" % name)).read_text(
                    errors="replace")[-3000:]
                raise NovaUnavailable("%s exited (%s): %s" % (
                    name, proc.returncode, tail))

    def _wait_ready(self, deadline):
        while not (_port_open(self.api_port)
                   and _port_open(self.placement_port)):
            self._check_alive()
            if time.monotonic() > deadline:
                raise NovaUnavailable("nova-api/placement did not listen")
            time.sleep(0.3)
        self.timings["api_listening_s"] = time.monotonic() - self._started
        while True:
            self._check_alive()
            status, body = self.request("GET",
                                        "/os-services?binary=nova-compute")
            if status == 200:
                up = {s["host"] for s in body["services"]
                      if s["state"] == "up"}
                if set(self.hosts) <= up:
                    break
            if time.monotonic() > deadline:
                raise NovaUnavailable("nova-computes not up: %s %s"
                                      % (status, body))
            time.sleep(0.5)
        if self.hosts:
            self._run("nova-manage", "cell_v2", "discover_hosts")


def main(argv=None):
    hosts = (argv if argv is not None else sys.argv[1:]) or ["compute1",
                                                            "compute2"]
    nova = RealNova(hosts)
    start = time.monotonic()
    nova.start()
    print(json.dumps({"endpoint": nova.endpoint, "token": nova.token,
                      "transport_url": nova.transport_url,
                      "start_s": round(time.monotonic() - start, 1),
                      "timings": {k: round(v, 1)
                                  for k, v in nova.timings.items()},
                      "rss_mb": {k: round(v) for k, v in
                                 nova.rss_mb().items()}}, indent=1),
          flush=True)
    try:
        if os.environ.get("POOLMGR_NOVA_HOLD"):
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        nova.stop()


if __name__ == "__main__":
    main()
