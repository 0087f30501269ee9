"""The simulator's XML-RPC responses, written without xmlrpc.client's
Marshaller.

NOTE(speed): a full read of a pool answers with every record of the pool
(hundreds of structs); xmlrpc.client's Marshaller, which dispatches every
value through a method table and escapes every string with three
replaces, was a third of the simulator's CPU in a 10 x 16 build-out
(benchmarks/profile_buildout.py with the simulator under yappi). This
writes the same document for the values xapi sends (strings, booleans,
ints, doubles, nil, arrays, structs); any other value (an
xmlrpc.client.DateTime, bytes) makes the whole response go through
xmlrpc.client as before. tests/unit/test_simulator_wire.py checks that
both parse to the same value.
"""

import xmlrpc.client

_HEAD = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"
_TAIL = "</param>\n</params>\n</methodResponse>\n"


class _Unsupported(Exception):
    pass


def _escape(text):
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _write(value, out):
    kind = type(value)
    if kind is str:
        out.append("<value><string>%s</string></value>\n" % _escape(value))
    elif kind is dict:
        out.append("<value><struct>\n")
        for key, item in value.items():
            if type(key) is not str:
                raise _Unsupported(key)
            out.append("<member>\n<name>%s</name>\n" % _escape(key))
            _write(item, out)
            out.append("</member>\n")
        out.append("</struct></value>\n")
    elif kind is list or kind is tuple:
        out.append("<value><array><data>\n")
        for item in value:
            _write(item, out)
        out.append("</data></array></value>\n")
    elif kind is bool:
        out.append("<value><boolean>%d</boolean></value>\n" % value)
    elif kind is int:
        if not xmlrpc.client.MININT <= value <= xmlrpc.client.MAXINT:
            raise _Unsupported(value)
        out.append("<value><int>%d</int></value>\n" % value)
    elif kind is float:
        out.append("<value><double>%r</double></value>\n" % value)
    elif value is None:
        out.append("<value><nil/></value>")
    else:
        raise _Unsupported(value)


def dumps_response(result):
    """The methodResponse carrying ``result``, as UTF-8 bytes."""
    out = [_HEAD]
    try:
        _write(result, out)
    except _Unsupported:
        return xmlrpc.client.dumps((result,), methodresponse=True,
                                   allow_none=True).encode()
    out.append(_TAIL)
    return "".join(out).encode()
