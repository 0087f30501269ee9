"""One acceptor thread for every simulated host's listening socket.

It watches them all with a selector and starts a thread per accepted
connection, so 500 idle hosts cost 500 file descriptors and no threads.
"""

import errno
import logging
import selectors
import socket
import threading

LOG = logging.getLogger(__name__)

class Acceptor:
    """One thread accepting on every host's listening socket."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending = []   # (callable, done Event)
        self._stopped = False
        self._thread = threading.Thread(target=self._loop,
                                        name="xapi-sim-acceptor", daemon=True)
        self._thread.start()

    def listen(self, endpoint, address, port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        # NOTE(accept): the kernel queues connections from listen() on, so
        # the host "listens" before the selector picks the socket up.
        self._run(lambda: self._selector.register(
            sock, selectors.EVENT_READ, endpoint), wait=False)
        return sock

    def forget(self, sock):
        """Stop accepting on ``sock`` and close it; returns once closed."""
        def close():
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self._run(close, wait=threading.current_thread() is not self._thread)

    def _run(self, fn, wait):
        done = threading.Event()
        with self._lock:
            if self._stopped:
                fn()
                return
            self._pending.append((fn, done))
        self._wake_w.send(b"x")
        if wait:
            done.wait()

    def _loop(self):
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                self._accept(key.fileobj, key.data)
            with self._lock:
                pending, self._pending = self._pending, []
                stopped = self._stopped
            for fn, done in pending:
                try:
                    fn()
                finally:
                    done.set()
            if stopped:
                return

    @staticmethod
    def _accept(sock, endpoint):
        while True:
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    LOG.warning("out of file descriptors accepting")
                return
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=endpoint.serve_connection,
                             args=(conn, address), daemon=True,
                             name="xapi-sim-%s" % endpoint.host.name).start()

    def stop(self):
        with self._lock:
            self._stopped = True
        self._wake_w.send(b"x")
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                key.fileobj.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
