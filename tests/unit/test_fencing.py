"""[xenserver] fence_command: argv, environment, exit codes, timeout."""

import sys

from poolmgr.engine import fencing


def _script(tmp_path, body):
    path = tmp_path / "fence.py"
    path.write_text("import os, sys, time\n" + body)
    return "%s %s" % (sys.executable, path)


def test_exit_zero_is_powered_off_and_sees_only_the_fence_variables(
        tmp_path, monkeypatch):
    monkeypatch.setenv("OS_PASSWORD", "nova-secret")
    out = tmp_path / "env"
    command = _script(tmp_path, "open(%r, 'w').write(repr(dict(os.environ)))"
                      "\nprint('off')\n" % str(out))
    outcome = fencing.run(command, "cmp-1", "10.0.0.1", "u-1", timeout=10)
    assert outcome.fenced and outcome.exit_code == 0
    assert outcome.output == "off"
    seen = eval(out.read_text())  # noqa: S307 - our own repr
    assert seen["POOLMGR_FENCE_HOST"] == "cmp-1"
    assert seen["POOLMGR_FENCE_ADDRESS"] == "10.0.0.1"
    assert seen["POOLMGR_FENCE_UUID"] == "u-1"
    assert "OS_PASSWORD" not in seen


def test_a_non_zero_exit_is_a_failed_fence_with_its_code_and_output(
        tmp_path):
    command = _script(tmp_path, "print('BMC   says\\nno'); sys.exit(4)\n")
    outcome = fencing.run(command, "cmp-1", "a", "u", timeout=10)
    assert not outcome.fenced
    assert outcome.describe(10) == "fence_command exited 4: BMC says no"


def test_a_command_past_its_timeout_is_killed_and_failed(tmp_path):
    command = _script(tmp_path, "time.sleep(30)\n")
    outcome = fencing.run(command, "cmp-1", "a", "u", timeout=0.5)
    assert not outcome.fenced and outcome.timed_out
    assert outcome.describe(2) == "fence_command did not finish within 2 s " \
        "(killed)"


def test_no_shell_is_involved(tmp_path):
    marker = tmp_path / "marker"
    # With a shell this would run touch; without, "true;" is no program.
    outcome = fencing.run("true; touch %s" % marker, "h", "a", "u", 5)
    assert not marker.exists()
    assert not outcome.fenced and "could not run: true;" in \
        outcome.describe(5)


def test_an_unset_or_missing_command_is_a_failed_fence():
    assert "not set" in fencing.run(None, "h", "a", "u", 5).describe(5)
    outcome = fencing.run("/nonexistent/fence", "h", "a", "u", 5)
    assert not outcome.fenced and "could not run" in outcome.describe(5)
