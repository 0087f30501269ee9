"""poolmgr-demo end to end, through its installed entry point."""

import os
import subprocess
import sys

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-demo")


def test_demo_forms_a_ready_pool_and_exits_zero():
    result = subprocess.run([BIN, "--join-delay", "0.5", "--eject-delay",
                             "0.5", "--address-base", "200"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, (result.stdout[-3000:]
                                    + result.stderr[-3000:])
    out = result.stdout
    assert "aggregate 1 (pool-a)  state: active" in out
    assert "live migration: ready" in out
    for member in ("compute1", "compute2", "compute3"):
        assert member in out
    # One journaled pool.join per joiner, the eject of the host removed.
    for joiner in ("compute2", "compute3", "compute4"):
        assert out.count("[succeeded] join %s pool.join(" % joiner) == 1
    assert out.count("[succeeded] join ") == 3
    assert out.count("[succeeded] eject compute4 pool.eject(") == 1
    assert "demo-only-password" not in out + result.stderr
    assert "Traceback" not in result.stderr


def test_demo_rejects_bad_arguments_with_usage_exit():
    result = subprocess.run([BIN, "--join-delay", "-1"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "delays" in result.stderr
