"""poolmgr-demo --scenario maintenance, through its installed entry point."""

import os
import re
import subprocess
import sys

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-demo")


def test_maintenance_demo_drains_and_reboots_in_under_20_seconds():
    result = subprocess.run([BIN, "--scenario", "maintenance",
                             "--address-base", "220"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, (result.stdout[-3000:]
                                    + result.stderr[-3000:])
    out = result.stdout
    # The blocker is shown before any VM moves.
    assert out.index("VM_REQUIRES_SR") < out.index("host_evacuate")
    assert "maintenance drain compute2 (operation 2) succeeded" in out
    assert "maintenance undrain compute2 (operation 3) succeeded" in out
    assert "rolling reboot compute1, compute2, compute3 (operation 4) " \
           "succeeded" in out
    assert "reboots: xs01 1, xs02 1, xs03 1" in out
    assert out.rstrip().splitlines()[-1].startswith("[")
    done = re.search(r"pool-m is active and ready \(([\d.]+)s\)", out)
    assert done and float(done.group(1)) < 20.0, out[-2000:]
    assert "demo-only-password" not in out + result.stderr
    assert "Traceback" not in result.stderr
