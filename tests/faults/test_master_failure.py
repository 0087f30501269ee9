"""A dead master through the daemon, the simulator and poolmgr-manage.

The master's xapi is killed (connection refused, its VMs keep running);
its members answer HOST_IS_SLAVE and slave-local logins. The pool goes
master_lost after [xenserver] master_dead_after (2 s here) and a member
is promoted only by policy: a person's --confirm-master-fenced, or a
fence command that exits 0; never when xapi HA is on.
"""

import os
import subprocess
import sys

from tests.faults import support

FAST = "[reconciler]\nresync_interval = 1\n"


def _xenserver(policy="manual", fence_command=None, extra=""):
    text = "[xenserver]\nmaster_dead_after = 2\nmaster_failover = %s\n" % (
        policy)
    if fence_command:
        text += "fence_command = %s\n" % fence_command
    return FAST + text + extra


def _manage(daemon, *args):
    binary = os.path.join(os.path.dirname(sys.executable), "poolmgr-manage")
    return subprocess.run([binary, "--config-file", str(daemon.config)]
                          + list(args), capture_output=True, text=True,
                          timeout=120)


def _formed(bed, count, policy="manual", fence_command=None, extra=""):
    names = bed.hosts(count)
    daemon = bed.daemon(extra=_xenserver(policy, fence_command, extra))
    agg = support.form_pool(bed.nova(), "dead-master", names)
    support.wait_for(lambda: bed.active(agg, names), timeout=60,
                     what="the pool to form")
    return names, daemon, agg


def _state(bed, agg, state):
    return bed.pool(agg).get("state") == state


def _reasons(bed, agg):
    return " | ".join(bed.pool(agg).get("reasons") or [])


def _promoted(bed, agg, new_master):
    record = bed.pool(agg).get("failover") or {}
    return record.get("promoted_at") and bed.pool(agg).get("master") == \
        new_master and bed.members(agg).get("cmp-1") == "fenced"


def test_manual_master_lost_names_the_master_then_pool_promote_works(bed):
    names, daemon, agg = _formed(bed, 3)
    vm = bed.sim.create_running_vm("xs01", "guest-on-master")
    support.settle(2)   # a pass or two read it on the master
    bed.sim.kill_xapi("xs01")
    # Before master_dead_after: said plainly, not master_lost yet.
    support.wait_for(lambda: "the pool is master_lost if it still does not "
                     "answer after [xenserver] master_dead_after = 2 s"
                     in _reasons(bed, agg), timeout=30,
                     what="the master to be seen not answering")
    assert _state(bed, agg, "changing")
    support.wait_for(lambda: _state(bed, agg, "master_lost"), timeout=30,
                     what="master_lost")
    reasons = _reasons(bed, agg)
    assert "pool master cmp-1 (%s" % bed.sim.hosts[0]["address"] in reasons
    assert "members answering (slave-local login): cmp-2, cmp-3" in reasons
    assert "guest-on-master" in reasons
    assert "--confirm-master-fenced" in reasons
    support.settle(2)
    assert bed.calls("pool.emergency_transition_to_master") == []
    assert bed.sim.vm_state(vm)["power_state"] == "Running"

    refused = _manage(daemon, "pool", "promote", str(agg))
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "--confirm-master-fenced" in refused.stderr

    done = _manage(daemon, "pool", "promote", str(agg),
                   "--confirm-master-fenced")
    assert done.returncode == 0, done.stderr
    support.wait_for(lambda: _promoted(bed, agg, "cmp-2"), timeout=30,
                     what="cmp-2 promoted")
    assert bed.sim.role("xs02") == "master"
    assert bed.sim.master_of("xs03") == "xs02"
    assert len(bed.calls("pool.emergency_transition_to_master")) == 1
    assert len(bed.calls("pool.recover_slaves", 1)) == 1
    record = bed.pool(agg)["failover"]
    assert record["verified"] == ["cmp-3"] and record["stragglers"] == {}
    assert "--confirm-master-fenced" in record["authority"]


def test_a_revived_old_master_is_not_trusted_and_the_way_out_is_shown(bed):
    names, daemon, agg = _formed(bed, 3)
    bed.sim.kill_xapi("xs01")
    support.wait_for(lambda: _state(bed, agg, "master_lost"), timeout=30,
                     what="master_lost")
    assert _manage(daemon, "pool", "promote", str(agg), "--host", "cmp-3",
                   "--confirm-master-fenced").returncode == 0
    support.wait_for(lambda: _promoted(bed, agg, "cmp-3"), timeout=30,
                     what="cmp-3 promoted")
    bed.sim.revive_xapi("xs01")
    assert bed.sim.role("xs01") == "master"     # its stale pool
    # NOTE(race): the record is written before the pass's reasons.
    support.wait_for(lambda: "stale copy of the pool" in _reasons(bed, agg),
                     timeout=30, what="the revived old master to be seen")
    assert "answers again as master" in bed.pool(agg)["failover"]["revived"]
    reasons = _reasons(bed, agg)
    assert "cmp-1 was master until cmp-3 was promoted" in reasons
    assert "poolmgr-manage pool retry %s cmp-1" % agg in reasons
    support.settle(3)
    assert bed.pool(agg)["master"] == "cmp-3"
    assert bed.members(agg)["cmp-1"] == "fenced"
    assert bed.pool(agg)["state"] != "active"
    assert bed.calls("pool.join", 0) == []


def test_fenced_with_a_failing_fence_command_does_not_promote(bed, tmp_path):
    script = tmp_path / "fence-fails.sh"
    script.write_text("#!/bin/sh\necho no power controller answers\n"
                      "exit 3\n")
    script.chmod(0o755)
    names, daemon, agg = _formed(bed, 3, "fenced", str(script))
    bed.sim.kill_xapi("xs01")
    support.wait_for(lambda: "fence_command exited 3" in _reasons(bed, agg),
                     timeout=30, what="the fence to fail")
    assert _state(bed, agg, "master_lost")
    assert "no power controller answers; no promotion" in _reasons(bed, agg)
    assert bed.calls("pool.emergency_transition_to_master") == []
    assert bed.sim.role("xs02") == "slave"


def test_fenced_promotes_verifies_members_and_lists_the_skipped(bed,
                                                                tmp_path):
    seen = tmp_path / "fence-env"
    script = tmp_path / "fence-ok.sh"
    script.write_text("#!/bin/sh\nenv > %s\necho powered off\nexit 0\n"
                      % seen)
    script.chmod(0o755)
    names, daemon, agg = _formed(bed, 4, "fenced", str(script))
    bed.sim.kill_xapi("xs01")
    bed.sim.set_offline("xs04")
    support.wait_for(lambda: _promoted(bed, agg, "cmp-2"), timeout=40,
                     what="cmp-2 promoted after the fence")
    env = dict(line.split("=", 1) for line in
               seen.read_text().splitlines() if "=" in line)
    assert env["POOLMGR_FENCE_HOST"] == "cmp-1"
    assert env["POOLMGR_FENCE_ADDRESS"] == bed.sim.hosts[0]["address"]
    assert env["POOLMGR_FENCE_UUID"] == bed.sim.hosts[0]["uuid"]
    assert support.ds.XAPI_SECRET not in seen.read_text()
    record = bed.pool(agg)["failover"]
    assert record["verified"] == ["cmp-3"]
    assert list(record["stragglers"]) == ["cmp-4"]
    assert record["authority"].startswith("fence_command exited 0")
    support.wait_for(lambda: "cmp-4 does not name the new master cmp-2"
                     in _reasons(bed, agg), timeout=30,
                     what="the straggler in the reasons")
    assert bed.sim.master_of("xs03") == "xs02"
    assert bed.sim.master_of("xs04") == "xs01"
    assert len(bed.calls("pool.emergency_transition_to_master")) == 1


def test_sigkill_between_the_two_promotion_steps_resumes_once(bed):
    # NOTE(gap): the first look at the new master comes wait_poll_interval
    # after emergency_transition_to_master; the kill lands in that gap.
    names, daemon, agg = _formed(
        bed, 3, extra="[reconciler]\nwait_poll_interval = 4\n")
    bed.sim.kill_xapi("xs01")
    support.wait_for(lambda: _state(bed, agg, "master_lost"), timeout=30,
                     what="master_lost")
    assert _manage(daemon, "pool", "promote", str(agg),
                   "--confirm-master-fenced").returncode == 0
    support.wait_for(
        lambda: [op for op in bed.journal(agg, kind="emergency_transition_"
                                          "to_master")
                 if op["status"] == "succeeded"], timeout=30,
        what="the first promotion step")
    daemon.kill()
    assert bed.calls("pool.recover_slaves") == []
    bed.daemon(extra=_xenserver())
    support.wait_for(lambda: _promoted(bed, agg, "cmp-2"), timeout=60,
                     what="the promotion to finish after the restart")
    assert len(bed.calls("pool.emergency_transition_to_master")) == 1
    assert len(bed.calls("pool.recover_slaves")) == 1
    assert bed.sim.master_of("xs03") == "xs02"
    assert all(op["status"] != "started" for op in bed.journal(agg))


def test_ha_enabled_pool_is_left_to_ha(bed, tmp_path):
    marker = tmp_path / "fenced"
    names, daemon, agg = _formed(bed, 3, "fenced",
                                 "touch %s" % marker)
    bed.sim.set_ha_enabled("xs01")
    support.wait_for(lambda: bed.pool(agg).get("ha_enabled"), timeout=30,
                     what="HA to be seen on the master")
    bed.sim.kill_xapi("xs01")
    support.wait_for(lambda: _state(bed, agg, "master_lost"), timeout=30,
                     what="master_lost")
    assert "xapi HA is enabled on this pool" in _reasons(bed, agg)
    refused = _manage(daemon, "pool", "promote", str(agg),
                      "--confirm-master-fenced")
    assert refused.returncode == 1 and "HA is enabled" in refused.stderr
    support.settle(2)
    assert not marker.exists()
    assert bed.calls("pool.emergency_transition_to_master") == []


def test_a_master_dying_in_a_quiet_pool_is_lost_without_a_resync(bed):
    """resync_interval is ten minutes: only the master watch (a converged
    pool looked at every master_dead_after seconds) can see it in time."""
    names = bed.hosts(2)
    bed.daemon(extra="[reconciler]\nresync_interval = 600\n"
                     "[xenserver]\nmaster_dead_after = 2\n")
    agg = support.form_pool(bed.nova(), "quiet-pool", names)
    support.wait_for(lambda: bed.active(agg, names), timeout=60,
                     what="the pool to form")
    support.settle(3)   # converged: the pool is due again only by the watch
    bed.sim.kill_xapi("xs01")
    support.wait_for(lambda: _state(bed, agg, "master_lost"), timeout=20,
                     what="master_lost without a resync")
    assert "pool master cmp-1" in _reasons(bed, agg)
