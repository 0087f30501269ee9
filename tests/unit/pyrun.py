"""Run a snippet in a fresh interpreter: what a process imports is only
visible in one that has imported nothing else."""

import subprocess
import sys


def stdout_of(code, env=None, timeout=60):
    """The snippet's standard output; a non-zero exit fails the test."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout, check=True,
                          env=env).stdout
