"""Bytes on the wire between this process's xapi clients and a simulator.

Counted on the client side, at the socket: every byte the client sends
(HTTP request line, headers, XML-RPC body) and receives (status line,
headers, body) on a connection to one of the simulator's endpoints. The
simulator serves in this process too; its own sockets (whose *peer* is a
client) are not counted.
"""

import contextlib
import socket
import threading
import urllib.parse


class ByteCounter:
    def __init__(self, urls):
        self.endpoints = set()
        for url in urls:
            parts = urllib.parse.urlsplit(url)
            self.endpoints.add((parts.hostname, parts.port))
        self.sent = 0
        self.received = 0
        self._lock = threading.Lock()

    def _ours(self, sock):
        try:
            return sock.getpeername()[:2] in self.endpoints
        except OSError:
            return False

    def reset(self):
        with self._lock:
            self.sent = self.received = 0

    @property
    def total(self):
        return self.sent + self.received

    @contextlib.contextmanager
    def counting(self):
        """Patch socket.socket while inside; restore on exit."""
        counter = self
        real_sendall = socket.socket.sendall
        real_send = socket.socket.send
        real_recv_into = socket.socket.recv_into
        real_recv = socket.socket.recv

        def sendall(sock, data, *args):
            if counter._ours(sock):
                with counter._lock:
                    counter.sent += len(data)
            return real_sendall(sock, data, *args)

        def send(sock, data, *args):
            n = real_send(sock, data, *args)
            if counter._ours(sock):
                with counter._lock:
                    counter.sent += n
            return n

        def recv_into(sock, buffer, *args):
            n = real_recv_into(sock, buffer, *args)
            if n and counter._ours(sock):
                with counter._lock:
                    counter.received += n
            return n

        def recv(sock, *args):
            data = real_recv(sock, *args)
            if data and counter._ours(sock):
                with counter._lock:
                    counter.received += len(data)
            return data

        socket.socket.sendall = sendall
        socket.socket.send = send
        socket.socket.recv_into = recv_into
        socket.socket.recv = recv
        try:
            yield self
        finally:
            socket.socket.sendall = real_sendall
            socket.socket.send = real_send
            socket.socket.recv_into = real_recv_into
            socket.socket.recv = real_recv
