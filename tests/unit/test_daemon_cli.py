"""The daemon's command line: bad input is one line and exit 2."""

import os
import subprocess
import sys

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr")


def run(*args):
    return subprocess.run([BIN] + list(args), capture_output=True,
                          text=True, timeout=60)


def test_missing_config_file_is_one_line_exit_2(tmp_path):
    result = run("--config-file", str(tmp_path / "absent.conf"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "absent.conf" in result.stderr


def test_bad_option_value_is_one_line_exit_2(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[DEFAULT]\ntransport_url = rabbit://u:topsecret@h/\n"
                    "[reconciler]\nworkers = lots\n")
    result = run("--config-file", str(conf))
    assert result.returncode == 2
    assert "workers" in result.stderr
    assert "topsecret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_argument_exits_2():
    result = run("--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
