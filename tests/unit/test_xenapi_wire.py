"""poolmgr.xenapi.wire decodes what xmlrpc.client decodes, the same way.

Each response is decoded by both: the simulator's answers (every class of
record event.from returns, through a join) and hand-made documents with
every XML-RPC type, faults, odd whitespace and what the fast walk leaves
to xmlrpc.client.
"""

import xmlrpc.client

import pytest

from poolmgr.xenapi import records
from poolmgr.xenapi import wire


def both(body):
    """(wire's answer, xmlrpc.client's answer): a value or the error."""
    answers = []
    for loads in (wire.loads_response,
                  lambda b: xmlrpc.client.loads(b)[0]):
        try:
            answers.append(("value", loads(body)))
        except xmlrpc.client.Fault as exc:
            answers.append(("fault", exc.faultCode, exc.faultString))
        except Exception as exc:  # noqa: BLE001 - compared, not hidden
            answers.append(("error", type(exc)))
    return answers


def response(*params):
    return xmlrpc.client.dumps(params, methodresponse=True,
                               allow_none=True).encode()


VALUES = [
    "", "plain", "  spaced  ", "line\nbreak", "tab\tand <&> 'quotes\"",
    "unicode \u00e9\u4e2d\U0001f600", 0, -7, 2 ** 31 - 1, True, False, 1.5,
    -0.0, None, [], {}, [1, "a", [True, {"k": "v"}]],
    {"": "empty name", "nested": {"list": [None, 2.25, "x"]}},
    xmlrpc.client.DateTime("20261201T12:34:56"),
    xmlrpc.client.Binary(b"\x00\x01bytes"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_type_decodes_as_xmlrpc_client_does(value):
    body = response({"Status": "Success", "Value": value})
    fast, slow = both(body)
    assert fast == slow
    assert fast[0] == "value"


@pytest.mark.parametrize("body", [
    # Untyped values are strings; text around a typed child is ignored.
    b"<methodResponse><params><param><value>bare</value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><params><param><value>\n  <int> 42 </int>\n"
    b"</value></param></params></methodResponse>",
    b"<methodResponse><params><param><value><i8>9000000000</i8></value>"
    b"</param></params></methodResponse>",
    b"<methodResponse><params><param><value><string/></value></param>"
    b"</params></methodResponse>",
    b"<methodResponse><params><param><value><struct><member><name>a"
    b"</name><value><boolean>1</boolean></value></member></struct></value>"
    b"</param></params></methodResponse>",
    b"<?xml version='1.0'?>\r\n<methodResponse><params><param><value>"
    b"a\r\nb</value></param></params></methodResponse>",
    # Left to xmlrpc.client: a bad boolean, an unknown type, broken XML.
    b"<methodResponse><params><param><value><boolean>2</boolean></value>"
    b"</param></params></methodResponse>",
    b"<methodResponse><params><param><value><ex:nil xmlns:ex='x'/></value>"
    b"</param></params></methodResponse>",
    b"<methodResponse><params><param><value><int>x</int></value></param>"
    b"</params></methodResponse>",
    b"<methodResponse><params><param><value>",
    b"not xml at all",
], ids=lambda b: b[:60].decode("latin-1"))
def test_odd_documents_decode_or_fail_as_xmlrpc_client_does(body):
    fast, slow = both(body)
    assert fast == slow


def test_a_fault_raises_what_xmlrpc_client_raises():
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(3, "no such method"),
                               methodresponse=True).encode()
    fast, slow = both(body)
    assert fast == slow == ("fault", 3, "no such method")


def test_the_simulators_answers_decode_the_same(simulator):
    import XenAPI
    sim = simulator(3, join_delay=0.0)
    sim.create_shared_sr(sim.hosts[0]["name_label"], "nfs-0", "nfs")
    session = XenAPI.Session(sim.hosts[0]["url"])
    session.xenapi.login_with_password("root", "sim-secret")
    batches = [getattr(session.xenapi, "event.from")(
        list(records.CLASSES), "", 1.0)]
    joiner = XenAPI.Session(sim.hosts[1]["url"])
    joiner.xenapi.login_with_password("root", "sim-secret")
    joiner.xenapi.pool.join(sim.hosts[0]["address"], "root", "sim-secret")
    batches.append(getattr(session.xenapi, "event.from")(
        list(records.CLASSES), batches[0]["token"], 5.0))
    classes = set()
    for batch in batches:
        body = response({"Status": "Success", "Value": batch})
        fast, slow = both(body)
        assert fast == slow
        classes.update(e["class"] for e in batch["events"])
    assert {"host", "pool", "sr", "pbd", "vm"} <= {c.lower()
                                                   for c in classes}
