"""The simulator's fast XML-RPC responses parse as xmlrpc.client's do."""

import xmlrpc.client

import pytest

from poolmgr.simulator import wire

VALUES = [
    "",
    "plain",
    "a & b < c > d & <<>>",
    "unicode: é ü 中文 \u2028",
    True,
    False,
    0,
    -7,
    2 ** 31 - 1,
    1.5,
    -0.25,
    None,
    [],
    {},
    ["OpaqueRef:1", {"k": "v"}, [True, "x"]],
    {"Status": "Success", "Value": {
        "OpaqueRef:a": {"uuid": "u-1", "other_config": {"<k>": "&v"},
                        "PBDs": ["OpaqueRef:p1", "OpaqueRef:p2"],
                        "enabled": True, "memory": "1024",
                        "empty": "", "nested": [[], {}]}}},
    {"Status": "Failure", "ErrorDescription": ["HOST_IS_SLAVE", "10.0.0.1"]},
]


def _reference(value):
    return xmlrpc.client.dumps((value,), methodresponse=True,
                               allow_none=True).encode()


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_fast_response_parses_like_xmlrpc_client(value):
    fast = xmlrpc.client.loads(wire.dumps_response(value),
                               use_builtin_types=False)
    slow = xmlrpc.client.loads(_reference(value), use_builtin_types=False)
    assert fast == slow
    assert fast == ((value if not isinstance(value, tuple) else list(value),),
                    None)


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_fast_response_is_xmlrpc_clients_document(value):
    # The same bytes, so nothing a client parses differs (whitespace
    # included).
    assert wire.dumps_response(value) == _reference(value)


def test_values_xapi_never_sends_fall_back_to_xmlrpc_client():
    when = xmlrpc.client.DateTime("20261201T10:00:00Z")
    value = {"last_updated": when, "blob": xmlrpc.client.Binary(b"\x00x")}
    assert wire.dumps_response(value) == _reference(value)
    (parsed,), _ = xmlrpc.client.loads(wire.dumps_response(value))
    assert parsed["last_updated"] == when
