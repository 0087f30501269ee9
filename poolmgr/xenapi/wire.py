"""XML-RPC responses decoded with ElementTree's C parser.

NOTE(parse): xmlrpc.client decodes a response through expat with a Python
callback for every start tag, end tag and piece of text, which made
parsing the largest share of the engine's xapi cost (a standalone host's
full event.from is about 14 KB and 600 elements; a pool's grows with its
hosts). Here expat builds the element tree in C and one tight walk turns
it into the same values: str (typed or untyped ``<value>``), int (``int``,
``i4``, ``i8``), bool, float, None (``nil``), ``xmlrpc.client.DateTime``
and ``xmlrpc.client.Binary`` (the client's defaults: poolmgr's transports
never ask for builtin types), dicts and lists; a ``<fault>`` raises
``xmlrpc.client.Fault`` as the client does. Anything else (an element
this walk does not know, a malformed document, a gzip body) is handed to
xmlrpc.client itself, so what it would raise is raised.
tests/unit/test_xenapi_wire.py compares both on the simulator's answers
and on hand-made edge cases.
"""

import base64
import sys
import xml.etree.ElementTree as ElementTree
import xmlrpc.client


class _Unknown(Exception):
    """Something the fast walk does not decode: xmlrpc.client decides."""


# NOTE(intern): the engine keeps every pool's records (engine.observe's
# feeds) for the life of the daemon. Field names, refs, uuids and the few
# values xapi repeats ("", "true", "OpaqueRef:NULL") came out of the parser
# as a new string each time: interning the struct keys and the strings of
# up to 64 characters took a 5-host pool's feed from 86 to 31 KB
# (tracemalloc) and the reconciler's peak in the 100 x 5 build-out from
# 69.4 to 65.3 MB. Longer strings (descriptions, certificates) are kept
# as they come.
_intern = sys.intern


def _short(text):
    return _intern(text) if len(text) <= 64 else text


def _value(element):
    """The Python value of a ``<value>`` element."""
    if not len(element):
        return _short(element.text or "")
    typed = element[0]
    tag = typed.tag
    if tag == "string":
        return _short(typed.text or "")
    if tag == "struct":
        result = {}
        for member in typed:
            if member.tag != "member" or len(member) != 2 or \
                    member[0].tag != "name" or member[1].tag != "value":
                raise _Unknown(member.tag)
            result[_intern(member[0].text or "")] = _value(member[1])
        return result
    if tag == "array":
        if len(typed) != 1 or typed[0].tag != "data":
            raise _Unknown("array")
        return [_value(item) for item in typed[0]]
    if tag in ("int", "i4", "i8"):
        return int(typed.text)
    if tag == "boolean":
        if typed.text == "0":
            return False
        if typed.text == "1":
            return True
        raise _Unknown("boolean")
    if tag == "double":
        return float(typed.text)
    if tag == "nil":
        return None
    if tag == "dateTime.iso8601":
        return xmlrpc.client.DateTime(typed.text or "")
    if tag == "base64":
        return xmlrpc.client.Binary(base64.decodebytes(
            (typed.text or "").encode("ascii")))
    raise _Unknown(tag)


def loads_response(body):
    """The params tuple of a methodResponse, as xmlrpc.client returns it."""
    try:
        root = ElementTree.fromstring(body)
        if root.tag != "methodResponse" or len(root) != 1:
            raise _Unknown(root.tag)
        child = root[0]
        if child.tag == "params":
            values = []
            for param in child:
                if param.tag != "param" or len(param) != 1 or \
                        param[0].tag != "value":
                    raise _Unknown(param.tag)
                values.append(_value(param[0]))
            return tuple(values)
        if child.tag == "fault" and len(child) == 1 and \
                child[0].tag == "value":
            fault = _value(child[0])
        else:
            raise _Unknown(child.tag)
    except (_Unknown, ElementTree.ParseError, ValueError, TypeError,
            IndexError):
        return xmlrpc.client.loads(body)[0]
    if not isinstance(fault, dict):
        return xmlrpc.client.loads(body)[0]
    raise xmlrpc.client.Fault(**fault)


class FastParsing:
    """Mixin of an xmlrpc.client Transport: responses through
    loads_response (a gzip body goes the client's own way)."""

    def parse_response(self, response):
        if response.getheader("Content-Encoding", "") == "gzip":
            return super().parse_response(response)
        return loads_response(response.read())
