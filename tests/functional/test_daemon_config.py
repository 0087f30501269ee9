"""The shipped config file and systemd unit say what the daemon expects."""

import configparser
import pathlib

from poolmgr import bootstrap

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_shipped_config_file_parses_and_every_option_exists():
    conf = bootstrap.build_conf()
    from cotyledon import oslo_config_glue
    oslo_config_glue.register_opts(conf)
    path = ROOT / "etc" / "poolmgr" / "poolmgr.conf"
    conf(["--config-file", str(path)], project="poolmgr")
    parser = configparser.RawConfigParser(strict=False)
    parser.read(path)
    for section in parser.sections() + ["DEFAULT"]:
        group = None if section == "DEFAULT" else getattr(conf, section)
        for key in parser[section]:
            if section != "DEFAULT" and key in parser.defaults():
                continue
            target = conf if group is None else group
            getattr(target, key)  # raises NoSuchOptError on a typo
    assert conf.notifications.pool == "poolmgr"
    assert conf.metrics.prometheus_port == 0


def test_systemd_unit_is_notify_restarting_and_reloads_with_hup():
    unit = configparser.RawConfigParser(strict=False)
    unit.optionxform = str
    unit.read(ROOT / "etc" / "systemd" / "poolmgr.service")
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["Restart"] == "on-failure"
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["ExecStart"].endswith(
        "poolmgr --config-file /etc/poolmgr/poolmgr.conf")
    assert svc["KillMode"] == "process"
