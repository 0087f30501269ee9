"""One HTTP server per simulated host, speaking xapi's XML-RPC (§1).

Replies are always xapi's envelope: ``{Status: Success, Value}`` or
``{Status: Failure, ErrorDescription: [code, params...]}``; an API error is
never an XML-RPC fault. A request that is not XML-RPC gets HTTP 500.
"""

import http.server
import socketserver
import threading
import time
import xmlrpc.client

from poolmgr.simulator.model import Failure

RPC_PATHS = ("/", "/RPC2")


class DropConnection(Exception):
    """Fault injection: close the connection without an answer."""


def _redact(method, params):
    """Params as the call log keeps them: no session ref, no password."""
    params = list(params)
    if method.startswith(("session.login", "session.slave_local_login")):
        if len(params) > 1:
            params[1] = "***"
        return params
    if method.startswith("sim."):
        return params
    params = params[1:]
    if method in ("pool.join", "pool.join_force") and len(params) > 2:
        params[2] = "***"
    return params


class _Handler(http.server.BaseHTTPRequestHandler):
    # NOTE(restart): HTTP/1.0 closes every connection after its answer, so
    # a host that "restarts" refuses the next call, as real xapi does.
    protocol_version = "HTTP/1.0"
    server_version = "xapi-sim"

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        if self.path not in RPC_PATHS:
            self.send_error(404)
            return
        try:
            length = int(self.headers.get("content-length", 0))
            params, method = xmlrpc.client.loads(self.rfile.read(length),
                                                 use_builtin_types=False)
        except Exception:  # noqa: BLE001 - malformed body, as xapi: HTTP 500
            self.send_error(500, "Malformed XML-RPC request")
            return
        try:
            body = self.server.sim_host_call(method, params)
        except DropConnection:
            self.close_connection = True
            self.connection.close()
            return
        response = xmlrpc.client.dumps((body,), methodresponse=True,
                                       allow_none=True).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)


class HostServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def _encode(value):
    """xapi's XML-RPC typing: ints travel as strings, None as ""."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_encode(v) for v in value]
    if value is None:
        return ""
    return value


class Endpoint:
    """The listening side of one simulated host; can go down and come back."""

    def __init__(self, simulator, host, port):
        self.simulator = simulator
        self.host = host
        self.port = port
        self.server = None
        self.thread = None
        self._lock = threading.Lock()

    def sync(self):
        """Make the listener match the host: serving or not.

        Reads the truth each time under the endpoint's lock, so restarts
        that overlap (short fuses) always end in the right state.
        """
        with self._lock:
            with self.simulator.world.lock:
                wanted = self.host.serving and not self.simulator.world.stopped
            if wanted and self.server is None:
                server = HostServer((self.host.address, self.port), _Handler)
                server.sim_host_call = self.call
                self.server = server
                self.thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.1},
                    name="xapi-sim-%s" % self.host.name, daemon=True)
                self.thread.start()
            elif not wanted and self.server is not None:
                server, self.server = self.server, None
                server.shutdown()
                server.server_close()

    start = sync

    def stop(self):
        with self._lock:
            server, self.server = self.server, None
            if server is not None:
                server.shutdown()
                server.server_close()

    def call(self, method, params):
        sim = self.simulator
        host = self.host
        world = sim.world
        if not method.startswith("sim.") and not host.serving:
            # inside a restart window: as good as connection refused
            raise DropConnection()
        if not method.startswith("sim."):
            with world.lock:
                world.call_log.append(sim.make_record(
                    time.time(), host.name, method, _redact(method, params)))
        fault = sim.take_fault(host, method)
        if host.latency:
            time.sleep(host.latency)
        if fault is not None:
            code, fparams, drop = fault
            if drop:
                raise DropConnection()
            return {"Status": "Failure",
                    "ErrorDescription": [code] + [str(p) for p in fparams]}
        try:
            if method.startswith("sim."):
                value = sim.control(method[4:], params)
            else:
                with world.lock:
                    value = sim.api.dispatch(host, method, list(params))
            return {"Status": "Success", "Value": _encode(value)}
        except Failure as failure:
            return {"Status": "Failure",
                    "ErrorDescription": failure.description}
        except Exception as exc:  # noqa: BLE001 - as xapi's exnHelper
            return {"Status": "Failure",
                    "ErrorDescription": ["INTERNAL_ERROR",
                                         "%s: %s" % (type(exc).__name__,
                                                     exc)]}
