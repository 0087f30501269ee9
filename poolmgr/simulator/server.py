"""The network side: every simulated host's listener, xapi's envelopes (§1).

Replies are always xapi's envelope: ``{Status: Success, Value}`` or
``{Status: Failure, ErrorDescription: [code, params...]}``; an API error is
never an XML-RPC fault. A body that is not XML-RPC gets HTTP 500, as xapi.

The sockets are accepted by :mod:`poolmgr.simulator.acceptor`.
"""

import http.server
import json
import logging
import socket
import threading
import time
import xmlrpc.client

from poolmgr.simulator.model import Failure
from poolmgr.simulator import tls
from poolmgr.simulator import wire

LOG = logging.getLogger(__name__)

XMLRPC_PATHS = ("/", "/RPC2")
JSONRPC_PATH = "/jsonrpc"
# NOTE(keep-alive): an idle client connection is closed after this long,
# so finished clients do not pin handler threads forever.
IDLE_TIMEOUT = 60.0
# NOTE(drop-retry): xmlrpc.client silently retries a request once when the
# server closes without answering; a dropped call's retry arriving this soon
# is dropped too, so a XenAPI client really sees the drop.
RETRY_WINDOW = 1.0


class DropConnection(Exception):
    """Fault injection or a restart: close the connection unanswered."""


def redact(method, params):
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


def encode(value):
    """xapi's typing on the wire: ints travel as strings, None as ""."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [encode(v) for v in value]
    if value is None:
        return ""
    return value


class _Handler(http.server.BaseHTTPRequestHandler):
    # NOTE(keep-alive): xmlrpc.client keeps connections open (HTTP/1.1);
    # the endpoint severs them when its host "restarts".
    protocol_version = "HTTP/1.1"
    server_version = "xapi-sim"
    timeout = IDLE_TIMEOUT

    def log_message(self, format, *args):
        pass

    def _reply(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_POST(self):
        endpoint = self.server
        try:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
        except (ValueError, OSError):
            self._drop()
            return
        if len(body) < length or not endpoint.serving():
            # NOTE(restart): a request on a connection severed by a restart
            # or set_offline is dropped, never answered with HTTP 500.
            self._drop()
            return
        if self.path in XMLRPC_PATHS:
            self._xmlrpc(endpoint, body)
        elif self.path == JSONRPC_PATH:
            self._jsonrpc(endpoint, body)
        else:
            self.send_error(404)
        if not endpoint.serving():
            # the host went down while this call ran (join, eject, ...)
            self.close_connection = True

    def _xmlrpc(self, endpoint, body):
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=False)
        except Exception:  # noqa: BLE001 - malformed body, as xapi: HTTP 500
            self.send_error(500, "Malformed XML-RPC request")
            return
        try:
            result = endpoint.call(method or "", params)
        except DropConnection:
            self._drop()
            return
        self._reply(200, wire.dumps_response(result), "text/xml")

    def _jsonrpc(self, endpoint, body):
        # NOTE(§1): JSON-RPC v1 and v2; errors as [code, params...] (v1) or
        # {code: 1, message: CODE, data: params} (v2).
        try:
            request = json.loads(body)
            method = request["method"]
            params = request.get("params", [])
            call_id = request["id"]
            if call_id is None or not isinstance(params, list):
                raise ValueError("bad request")
        except (ValueError, KeyError, TypeError):
            self.send_error(500, "Malformed JSON-RPC request")
            return
        try:
            result = endpoint.call(str(method), params)
        except DropConnection:
            self._drop()
            return
        v2 = request.get("jsonrpc") == "2.0"
        if result["Status"] == "Success":
            reply = {"result": result["Value"], "id": call_id}
            if not v2:
                reply["error"] = None
        else:
            code, *data = result["ErrorDescription"]
            if v2:
                reply = {"error": {"code": 1, "message": code, "data": data},
                         "id": call_id}
            else:
                reply = {"result": None, "error": [code] + data,
                         "id": call_id}
        if v2:
            reply["jsonrpc"] = "2.0"
        self._reply(200, json.dumps(reply).encode(), "application/json")


class Endpoint:
    """The listening side of one simulated host; goes down and comes back.

    It is also the ``server`` object its request handlers see.
    """

    def __init__(self, simulator, host, acceptor):
        self.simulator = simulator
        self.host = host
        self.acceptor = acceptor
        self.port = None
        self.listener = None
        self.connections = set()
        # tls.HostCertificate when the simulator serves HTTPS (--tls)
        self.certificate = None
        self._lock = threading.Lock()
        self._dropped = {}  # method -> monotonic deadline for its retry

    def serving(self):
        return self.host.serving and not self.simulator.world.stopped

    def listen(self, port):
        """Bind and listen now; raises OSError (e.g. EADDRINUSE)."""
        with self._lock:
            if self.listener is None:
                self.listener = self.acceptor.listen(self,
                                                     self.host.address, port)
            # NOTE(port): keep the bound port, not 0, so a restart comes
            # back on the same one.
            self.port = self.listener.getsockname()[1]
            return self.port

    def sync(self):
        """Make the listener match the host: serving or refusing.

        Reads the truth each time, so overlapping restarts (short fuses)
        always end in the right state.
        """
        with self.simulator.world.lock:
            wanted = self.serving()
        if wanted:
            try:
                self.listen(self.port)
            except OSError:
                LOG.exception("%s cannot listen again", self.host.name)
        else:
            self.close()

    def close(self):
        """Connection refused from now on; open connections are severed."""
        with self._lock:
            listener, self.listener = self.listener, None
            connections = list(self.connections)
        if listener is not None:
            self.acceptor.forget(listener)
        self.sever(connections)

    def sever(self, connections=None):
        """Cut the open connections (a restart, a new certificate)."""
        if connections is None:
            with self._lock:
                connections = list(self.connections)
        for conn in connections:
            # NOTE(restart): SHUT_RD wakes a handler idling in recv (it then
            # closes) and still lets a call in progress send its answer.
            # socket.socket's own shutdown: an SSLSocket's would drop its
            # TLS state under the handler's feet.
            try:
                socket.socket.shutdown(conn, socket.SHUT_RD)
            except OSError:
                pass

    def _accept_tls(self, conn):
        """The connection to serve: TLS when the client speaks it first.

        As xapi (HTTPS on 443, HTTP on 80), a --tls host answers both; the
        first byte tells which on one port.
        """
        certificate = self.certificate
        if certificate is None:
            return conn
        conn.settimeout(IDLE_TIMEOUT)
        first = conn.recv(1, socket.MSG_PEEK)
        if not first or first[0] != tls.TLS_HANDSHAKE:
            return conn
        return certificate.context.wrap_socket(conn, server_side=True)

    def serve_connection(self, conn, address):
        try:
            conn = self._accept_tls(conn)
        except OSError:
            # NOTE(tls): a client that dropped the handshake, e.g. poolmgr
            # refusing a certificate that does not match its pin.
            conn.close()
            return
        with self._lock:
            self.connections.add(conn)
        try:
            _Handler(conn, address, self)
        except OSError:
            pass
        finally:
            with self._lock:
                self.connections.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _retry_of_drop(self, method):
        deadline = self._dropped.pop(method, None)
        return deadline is not None and time.monotonic() < deadline

    def call(self, method, params):
        """One API call: the reply struct, or DropConnection."""
        sim = self.simulator
        host = self.host
        world = sim.world
        control = method.startswith("sim.")
        if not control:
            if not self.serving():
                # inside a restart window: as good as connection refused
                raise DropConnection()
            with world.lock:
                world.call_log.append(sim.make_record(
                    time.time(), host.name, method, redact(method, params)))
            if self._retry_of_drop(method):
                raise DropConnection()
        fault = None if control else sim.take_fault(host, method)
        if host.latency and not control:
            time.sleep(host.latency)
        if fault is not None:
            code, fparams, drop = fault
            if drop:
                self._dropped[method] = time.monotonic() + RETRY_WINDOW
                raise DropConnection()
            return {"Status": "Failure",
                    "ErrorDescription": [code] + [str(p) for p in fparams]}
        try:
            if control:
                value = sim.control(method[4:], params)
            else:
                with world.lock:
                    value = sim.api.dispatch(host, method, list(params))
            return {"Status": "Success", "Value": encode(value)}
        except Failure as failure:
            return {"Status": "Failure",
                    "ErrorDescription": failure.description}
        except Exception as exc:  # noqa: BLE001 - as xapi's exnHelper
            LOG.exception("%s on %s", method, host.name)
            return {"Status": "Failure",
                    "ErrorDescription": ["INTERNAL_ERROR",
                                         "%s: %s" % (type(exc).__name__,
                                                     exc)]}
