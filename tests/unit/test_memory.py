"""poolmgr.memory: deferred imports and the shared PyMySQL TLS context.

Each check runs in a fresh interpreter, so what it defers or patches does
not leak into the test process.
"""

import subprocess
import sys
import textwrap


def _run(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_deferred_module_is_imported_when_first_read():
    out = _run("""
        import sys
        from poolmgr import memory
        print(memory.defer(("json.tool", "no_such_module_here")))
        import json.tool
        from json import tool
        print(type(sys.modules["json.tool"]).__name__, memory.deferred())
        print(callable(tool.main), type(sys.modules["json.tool"]).__name__,
              sys.modules["json"].tool is sys.modules["json.tool"],
              memory.deferred())
    """)
    assert out == ["['json.tool']", "_Deferred", "['json.tool']",
                   "True", "module", "True", "[]"]


def test_a_deferred_package_is_imported_for_its_submodules():
    out = _run("""
        import sys
        from poolmgr import memory
        memory.defer(("email",))
        import email.mime.text
        print(type(sys.modules["email"]).__name__,
              email.mime.text.MIMEText("x").get_content_type())
    """)
    assert out == ["module", "text/plain"]


def test_the_master_defers_what_oslo_config_imports_unused():
    out = _run("""
        import sys
        from poolmgr.cmd import daemon
        from poolmgr import memory
        print(memory.deferred())
        from oslo_config import types
        print(types.URI()("http://example.com/").startswith("http"),
              memory.deferred())
    """)
    assert out == ["['rfc3986',", "'ssl',", "'stevedore',", "'xmlrpc.client']",
                   "True", "['ssl',", "'stevedore',", "'xmlrpc.client']"]


def test_the_master_defers_openssl_until_a_worker_reads_ssl():
    out = _run("""
        import sys
        from poolmgr.cmd import daemon
        from poolmgr import memory
        from oslo_serialization import jsonutils
        import http.client
        def mapped():
            return any("libcrypto" in line for line in open("/proc/self/maps"))
        print(mapped(), memory.deferred())
        # what oslo.log's jsonutils and http.client read, at their first use
        when = jsonutils.to_primitive(
            sys.modules["xmlrpc.client"].DateTime("20261201T00:00:00"))
        print(when, http.client.HTTPSConnection("example.org").port,
              mapped(), memory.deferred())
    """)
    assert out == ["False", "['rfc3986',", "'ssl',", "'stevedore',",
                   "'xmlrpc.client']", "2026-12-01T00:00:00.000000", "443",
                   "True", "['rfc3986',", "'stevedore']"]


def test_a_worker_defers_cryptography_until_pymysql_needs_it():
    out = _run("""
        import sys
        from poolmgr import bootstrap, service
        conf = bootstrap.build_conf(libraries=False)
        service.ReconcilerService(0, conf)
        from pymysql import _auth
        rust = "cryptography.hazmat.bindings._rust"
        print(_auth._have_cryptography, rust in sys.modules)
        # what sha256_password / caching_sha2_password's RSA exchange reads
        key = _auth.serialization.load_pem_public_key
        print(callable(key), _auth.hashes.SHA1().name,
              _auth.padding.OAEP is not None, rust in sys.modules)
    """)
    assert out == ["True", "False", "True", "sha1", "True", "True"]


def test_pymysql_connections_share_one_default_tls_context():
    out = _run("""
        import sqlalchemy as sa
        from pymysql import connections
        from poolmgr import memory
        print(memory.share_mysql_tls_context(),
              memory.share_mysql_tls_context())
        engine = sa.create_engine("mysql+pymysql://u@127.0.0.1:1/db")
        try:
            engine.connect()
        except sa.exc.OperationalError:
            pass    # nothing listens: the hook ran before the connect
        new = connections.Connection
        a, b = new(defer_connect=True), new(defer_connect=True)
        print(a.ctx is b.ctx, a.ctx.verify_mode == 0, a.ssl,
              a._ssl_required)
        import ssl
        ctx = ssl.create_default_context()
        c = new(defer_connect=True, ssl=ctx)
        print(c.ctx is ctx, c._ssl_required)
        d, e = (new(defer_connect=True, ssl_verify_cert=True)
                for _ in range(2))
        print(d.ctx is not e.ctx, d.ctx is not a.ctx, d._ssl_required)
    """)
    # no ssl_* option: TLS if offered, CERT_NONE, one context; an explicit
    # context or TLS options: the connection's own, as before
    assert out == ["True", "False", "True", "True", "True", "False",
                   "True", "True", "True", "True", "True"]


def test_the_intake_defers_what_oslo_messaging_imports_unused():
    out = _run("""
        import os, sys
        os.environ["EVENTLET_NO_GREENDNS"] = "yes"
        from poolmgr import bootstrap, memory, service
        conf = bootstrap.build_conf(libraries=False)
        service.IntakeService(0, conf)
        import oslo_messaging, poolmgr.intake
        print([m for m in memory.MESSAGING_DEFERRED
               if m in memory.deferred()])
        from oslo_utils import netutils
        print(bool(netutils.psutil.net_if_addrs()), memory.deferred())
    """)
    assert out[:2] == ["['psutil',", "'yappi']"]
    assert out[2] == "True" and "psutil" not in " ".join(out[3:])


def test_threads_reading_a_stand_in_at_once_import_it_once(tmp_path):
    (tmp_path / "slow_mod.py").write_text(
        "import builtins, time\n"
        "builtins.slow_mod_runs = getattr(builtins, 'slow_mod_runs', 0) + 1\n"
        "time.sleep(0.3)\n"
        "VALUE = 42\n")
    out = _run("""
        import builtins, sys, threading
        sys.path.insert(0, %r)
        from poolmgr import memory
        memory.defer(("slow_mod",))
        import slow_mod
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(
            slow_mod.VALUE)) for _ in range(16)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(seen == [42] * 16, builtins.slow_mod_runs, memory.deferred())
    """ % str(tmp_path))
    assert out == ["True", "1", "[]"]


_ARENAS = """
    import ctypes, os, sys, tempfile, threading
    from poolmgr import memory
    print(memory.limit_malloc_arenas())
    together = threading.Barrier(8)
    def allocate():
        # Each thread allocates while the seven others are alive (a thread
        # that ended hands its arena to the next one).
        together.wait()
        kept = [bytes(1000) + bytes([i % 256]) for i in range(2000)]
        together.wait()
        del kept
    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    path = tempfile.mktemp()
    out = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, out)
    libc.fclose(out)
    print(open(path).read().count("<heap nr="))
    os.unlink(path)
"""


def _glibc():
    import os
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError):
        return False


def test_a_worker_keeps_two_malloc_arenas_for_its_threads():
    if not _glibc():
        import pytest
        pytest.skip("malloc arenas are glibc's")
    # NOTE(arenas): eight threads that allocate would get eight arenas.
    capped, arenas = _run(_ARENAS)
    assert capped == "True" and int(arenas) <= 2, arenas


def test_an_operators_malloc_arena_max_is_left_alone():
    import os
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_ARENAS)], capture_output=True,
        text=True, timeout=120, env=dict(os.environ, MALLOC_ARENA_MAX="4"))
    assert result.returncode == 0, result.stderr
    capped, arenas = result.stdout.split()
    assert capped == "False" and 2 < int(arenas) <= 4, arenas


def test_every_worker_caps_its_arenas_at_start():
    if not _glibc():
        import pytest
        pytest.skip("malloc arenas are glibc's")
    code = _ARENAS.replace(
        "print(memory.limit_malloc_arenas())",
        "from poolmgr import bootstrap, service\n"
        "    conf = bootstrap.build_conf(libraries=False)\n"
        "    service._start_worker(conf, ())\n"
        "    print(True)")
    assert "limit_malloc_arenas()" not in code
    capped, arenas = _run(code)
    assert int(arenas) <= 2, arenas
