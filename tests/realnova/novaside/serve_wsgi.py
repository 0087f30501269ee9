"""Serve one of Nova's WSGI apps with the stdlib (run by the Nova venv).

    python serve_wsgi.py MODULE HOST PORT

MODULE exposes ``application`` (``nova.wsgi.osapi_compute``,
``placement.wsgi.api``). A thread per request is enough for tests.
"""

import importlib
import socketserver
import sys
from wsgiref import simple_server


class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("wsgi %s\n" % (fmt % args))


def main():
    module, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # NOTE(argv): nova's app parses sys.argv as its own command line.
    sys.argv = [sys.argv[0]]
    app = importlib.import_module(module).application
    server = simple_server.make_server(host, port, app, server_class=Server,
                                       handler_class=Handler)
    sys.stderr.write("serving %s on %s:%d\n" % (module, host, port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
