"""Options are all reachable by oslo-config-generator, secrets marked."""

import os
import subprocess
import sys

from poolmgr import bootstrap
from poolmgr import opts


def test_every_option_has_help_text():
    for group, group_opts in opts.list_opts():
        for opt in group_opts:
            assert opt.help, "%s.%s has no help" % (group.name, opt.name)


def test_xenserver_password_is_secret_and_tls_verified_by_default():
    conf = bootstrap.build_conf()
    conf([])
    xen = dict((o.name, o) for o in dict(
        (g.name, o) for g, o in opts.list_opts())["xenserver"])
    assert xen["connection_password"].secret
    assert conf.xenserver.verify_tls is True


def test_contract_option_names_exist():
    conf = bootstrap.build_conf()
    conf([])
    assert conf.transport_url is None or isinstance(conf.transport_url, str)
    assert conf.database.connection is None
    assert conf.xenserver.connection_username == "root"
    assert conf.notifications.topics == ["versioned_notifications",
                                         "notifications"]
    assert conf.notifications.exchange == "nova"
    assert conf.notifications.pool == "poolmgr"
    assert conf.oslo_messaging_rabbit.rabbit_qos_prefetch_count == 400
    assert (conf.notifications.batch_size * 2
            <= conf.oslo_messaging_rabbit.rabbit_qos_prefetch_count)


def test_oslo_config_generator_lists_poolmgr_sections(tmp_path):
    gen = os.path.join(os.path.dirname(sys.executable),
                       "oslo-config-generator")
    out = tmp_path / "sample.conf"
    result = subprocess.run([gen, "--namespace", "poolmgr", "--namespace",
                             "oslo.db", "--output-file", str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for section in ("[xenserver]", "[notifications]", "[reconciler]",
                    "[database]", "[metrics]"):
        assert section in text
    assert "#connection_password = <None>" in text


def test_two_configs_in_one_process_do_not_share_overrides():
    first = bootstrap.build_conf()
    first([])
    second = bootstrap.build_conf()
    second([])
    first.set_override("pool", "first-queue", group="notifications")
    assert first.notifications.pool == "first-queue"
    assert second.notifications.pool == "poolmgr"
