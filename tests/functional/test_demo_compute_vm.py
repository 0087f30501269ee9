"""poolmgr-demo's two topologies (issue 12), through its entry point."""

import os
import re
import subprocess
import sys

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr-demo")


def _demo(*extra):
    result = subprocess.run([BIN, "--join-delay", "0.5", "--eject-delay",
                             "0.5"] + list(extra), capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, (result.stdout[-3000:]
                                    + result.stderr[-3000:])
    return result.stdout


def test_demo_shows_shutdown_join_start_and_each_nodes_downtime():
    out = _demo("--address-base", "220")
    assert "topology: classic" in out
    for joiner in ("compute2", "compute3", "compute4"):
        steps = [line.split("] ", 2)[2].split(" ")[0] for line in
                 out.splitlines() if "[succeeded]" in line
                 and " %s " % joiner in line]
        assert steps[:3] == ["compute_vm_clean_shutdown", "join",
                             "compute_vm_start"]
        down = re.search(r"compute node %s was down ([0-9.]+) s" % joiner,
                         out)
        assert down and float(down.group(1)) >= 0.5
    assert "[succeeded] compute_vm_gone compute4" in out


def test_demo_independent_compute_has_no_compute_vm_steps():
    out = _demo("--address-base", "230", "--independent-compute")
    assert "topology: independent compute" in out
    assert "compute_vm_" not in out
    assert "was down" not in out
    assert out.count("[succeeded] join ") == 3
