"""mask_url: every password of every URL, read by the URL's own parser."""

import os
import subprocess
import sys

from poolmgr import utils
from tests.unit import pyrun

BIN = os.path.join(os.path.dirname(sys.executable), "poolmgr")


def test_every_host_of_a_multi_host_transport_url_is_masked():
    assert utils.mask_url("rabbit://u:alpha@h1,u:beta@h2/") == \
        "rabbit://u:***@h1,u:***@h2/"


def test_multi_host_transport_url_with_ports_and_vhost_keeps_the_rest():
    assert utils.mask_url("rabbit://u:alpha@h1:5672,v:beta@h2:5673/vh") == \
        "rabbit://u:***@h1:5672,v:***@h2:5673/vh"


def test_transport_password_containing_a_slash_is_masked():
    masked = utils.mask_url("rabbit://u:se/cret@h1:5672,v:ot/her@h2/vh")
    assert masked == "rabbit://u:***@h1:5672,v:***@h2/vh"


def test_percent_encoded_transport_password_is_masked():
    assert utils.mask_url("rabbit://u:a%2Fb@h1/") == "rabbit://u:***@h1/"


def test_database_password_containing_a_slash_is_masked():
    assert utils.mask_url(
        "mysql+pymysql://root:p/ass@127.0.0.1/poolmgr?charset=utf8mb4") == \
        "mysql+pymysql://root:***@127.0.0.1/poolmgr?charset=utf8mb4"


def test_url_inside_an_error_message_is_masked_in_place():
    text = ("(pymysql.err.OperationalError) can't connect: "
            "'mysql+pymysql://root:s3cr3t@db/poolmgr' refused")
    assert utils.mask_url(text) == text.replace("s3cr3t", "***")


def test_command_line_with_a_transport_url_is_masked():
    line = "poolmgr --transport-url rabbit://guest:g1/g2@127.0.0.1:5672/ -d"
    assert utils.mask_url(line) == \
        "poolmgr --transport-url rabbit://guest:***@127.0.0.1:5672/ -d"


def test_ipv6_transport_host_is_masked():
    assert utils.mask_url("rabbit://u:pw@[::1]:5672/") == \
        "rabbit://u:***@[::1]:5672/"


def test_key_value_secret_is_masked():
    assert "hunter2" not in utils.mask_url("connection_password=hunter2")


def test_url_without_credentials_is_unchanged():
    assert utils.mask_url("http://127.0.0.11:8080/RPC2") == \
        "http://127.0.0.11:8080/RPC2"


def test_config_error_masks_every_password_of_a_multi_host_url(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[reconciler]\nworkers = "
                    "rabbit://u:first1@h1,u:sec/ond2@h2/\n")
    result = subprocess.run([BIN, "--config-file", str(conf)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "h2" in result.stderr
    assert "first1" not in result.stderr
    assert "ond2" not in result.stderr


def test_transport_passwords_agree_with_oslo_messaging():
    import oslo_messaging
    from oslo_config import cfg
    conf = cfg.ConfigOpts()
    for url in ("rabbit://u:alpha@h1,u:beta@h2/",
                "rabbit://u:a%2Fb@h1:5672/vh",
                "rabbit://u:p:w:d@[::1]:5672/",
                "rabbit://u:@h1,v:x@h2/",
                "rabbit://only-user@h1/",
                "rabbit://h1,h2/",
                "kafka://u:%40t@h1:9092/?a=b",
                "rabbit://u:pw@h1/vh?ssl=1#frag",
                "http://root:pa:ss@10.0.0.1:80/RPC2"):
        expected = [h.password for h in
                    oslo_messaging.TransportURL.parse(conf, url).hosts
                    if h.password]
        assert utils._transport_passwords(url) == expected, url


def test_mask_url_does_not_import_oslo_messaging_or_sqlalchemy():
    code = ("import sys; from poolmgr import utils; "
            "utils.mask_url('rabbit://u:pw@h/ http://root:x@h/'); "
            "print(sorted(m for m in ('oslo_messaging', 'sqlalchemy', "
            "'eventlet') if m in sys.modules))")
    out = pyrun.stdout_of(code)
    assert out.strip() == "[]"
