"""``poolmgr-manage pool prove`` through the installed entry point (issue
26 part 3): exit 0 proven, 1 not, with xapi's code of the failing hop."""

import json

import pytest

from poolmgr.db import api as db_api
from tests.functional import engine_support as es


@pytest.fixture
def pool(sim, tmp_path, manage):
    """pool-a of three hosts with the shared SR NFS and the template tpl,
    built without a canary; poolmgr-manage's config names the template."""
    s = sim(3)
    s.create_shared_sr(1, "NFS")
    s.add_template(1, "tpl")
    es.want(1, "pool-a", es.register(s))
    assert es.engine(es.make_conf()).reconcile_pool(1).converged
    config = tmp_path / "poolmgr.conf"
    config.write_text(config.read_text().replace(
        "[xenserver]\n", "[xenserver]\ncanary_vm_template = tpl\n"))
    return s


def test_prove_prints_each_hop_and_exits_0(pool, manage):
    run = manage("pool", "prove", "pool-a")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("canary_migrate") == 4  # started + succeeded
    assert "live migration: ready" in run.stdout
    assert "live migration proof: proven at" in run.stdout
    assert "(2 hops, p50" in run.stdout
    assert pool.vms_named(1, "poolmgr-canary-1") == []


def test_prove_json_has_the_proof_field(pool, manage):
    run = manage("pool", "prove", "1", "--format", "json")
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["live_migration_ready"] is True
    assert shown["live_migration_proof"].startswith("proven at ")
    assert len(shown["live_migration_proof_detail"]["hops"]) == 2
    again = json.loads(manage("pool", "show", "1", "--format",
                              "json").stdout)
    assert again["live_migration_proof"] == shown["live_migration_proof"]


def test_prove_exits_1_with_the_failing_hops_code(pool, manage):
    pool.unplug_pbd("xs03", "NFS")
    run = manage("pool", "prove", "pool-a")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "live migration: NOT ready" in run.stdout
    assert "cmp-2 -> cmp-3: VM_REQUIRES_SR" in run.stdout
    assert "[failed] canary_migrate" in run.stdout
    assert pool.vms_named(1, "poolmgr-canary-1") == []
    assert db_api.get_pool(1)["live_migration_ready"] is False


def test_prove_without_a_template_is_one_line_exit_1(sim, manage):
    s = sim(2)
    es.want(1, "pool-a", es.register(s))
    assert es.engine(es.make_conf()).reconcile_pool(1).converged
    run = manage("pool", "prove", "pool-a")
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0
    assert "canary_vm_template is not set" in run.stderr
    assert es.calls(s, "VM.clone") == []


def test_prove_of_an_unknown_aggregate_is_exit_1(sim, manage):
    run = manage("pool", "prove", "nope")
    assert run.returncode == 1 and "nope" in run.stderr
