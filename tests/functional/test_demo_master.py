"""poolmgr-demo --scenario master-failure, through its entry point."""

import re
import subprocess

from tests.functional.test_demo import BIN


def test_master_failure_scenario_promotes_once_and_fences_the_old_master():
    result = subprocess.run([BIN, "--scenario", "master-failure",
                             "--join-delay", "0.5", "--address-base", "160"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, (result.stdout[-3000:]
                                    + result.stderr[-3000:])
    out = result.stdout
    assert "pool-a: master_lost" in out
    assert "does not answer since" in out
    assert "guest-on-master" in out
    assert out.count("[succeeded] emergency_transition_to_master "
                     "compute2") == 1
    assert out.count("[succeeded] recover_slaves compute2") == 1
    assert re.search(r"compute1\s+fenced", out)
    assert "master: compute2" in out
    assert "poolmgr-manage pool retry 1 compute1" in out
    done = re.search(r"\[\s*([\d.]+)s\] done: compute2 is master", out)
    assert done and float(done.group(1)) < 20.0
    assert "demo-only-password" not in out + result.stderr
    assert "Traceback" not in result.stderr
