"""``[xenserver] fence_command``: power a lost master off before promoting.

The contract (doc/source/admin/master-failure.rst): the command line is
split with shell rules and run without a shell; its environment is a
minimal one (PATH, LANG) plus ``POOLMGR_FENCE_HOST`` (the compute host),
``POOLMGR_FENCE_ADDRESS`` (its xapi address) and ``POOLMGR_FENCE_UUID``
(its XenServer uuid); exit 0 means the host is powered off. Anything else
(another exit code, a timeout, a command that cannot start) is a failed
fence, and poolmgr does not promote.
"""

import dataclasses
import os
import shlex
import subprocess

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# Characters of the command's output kept in the pool's reasons and log.
OUTPUT_KEPT = 400


@dataclasses.dataclass
class FenceOutcome:
    fenced: bool
    exit_code: int = None
    timed_out: bool = False
    output: str = ""
    error: str = None       # the command could not start

    def describe(self, timeout):
        if self.fenced:
            return "fence_command exited 0 (powered off)"
        if self.timed_out:
            text = "fence_command did not finish within %.0f s (killed)" % (
                timeout)
        elif self.error:
            text = "fence_command could not run: %s" % self.error
        else:
            text = "fence_command exited %s" % self.exit_code
        return text + (": %s" % self.output if self.output else "")

    def as_record(self, timeout):
        return {"fenced": self.fenced, "exit_code": self.exit_code,
                "timed_out": self.timed_out, "output": self.output,
                "outcome": self.describe(timeout)}


def environment(host, address, uuid):
    """What the command sees: nothing of poolmgr's own environment but
    PATH and LANG.

    NOTE(no-secret): the daemon's environment may hold credentials (an
    OS_PASSWORD, a transport URL); the fence command gets only what it
    needs to find its host. Its own credentials (IPMI, Redfish) live in
    its own files.
    """
    env = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
    env.update(POOLMGR_FENCE_HOST=host or "",
               POOLMGR_FENCE_ADDRESS=address or "",
               POOLMGR_FENCE_UUID=uuid or "")
    return env


def _trimmed(*texts):
    text = " ".join(" ".join((t or "").split()) for t in texts).strip()
    if len(text) > OUTPUT_KEPT:
        text = text[:OUTPUT_KEPT - 3] + "..."
    return text


def run(command, host, address, uuid, timeout):
    """Run ``command`` for the lost master; a FenceOutcome."""
    try:
        argv = shlex.split(command or "")
    except ValueError as exc:
        return FenceOutcome(False, error="cannot split it: %s" % exc)
    if not argv:
        return FenceOutcome(False, error="[xenserver] fence_command is not "
                                         "set")
    LOG.warning("Fencing lost master %s (%s): running %s", host, address,
                argv[0])
    try:
        done = subprocess.run(argv, env=environment(host, address, uuid),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        outcome = FenceOutcome(False, timed_out=True, output=_trimmed(
            _text(exc.stdout), _text(exc.stderr)))
    except OSError as exc:
        outcome = FenceOutcome(False, error="%s: %s" % (
            argv[0], exc.strerror or exc))
    else:
        outcome = FenceOutcome(done.returncode == 0,
                               exit_code=done.returncode,
                               output=_trimmed(done.stdout, done.stderr))
    LOG.log(logging.INFO if outcome.fenced else logging.WARNING,
            "Fencing lost master %s: %s", host, outcome.describe(timeout))
    return outcome


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""
