"""Small helpers shared by several rooms."""

import re

from oslo_utils import strutils

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)"
                           r"(?P<user>[^:/@\s,;]*):(?P<password>[^@/\s]*)@")


def mask_url(text):
    """Hide passwords in URLs (``rabbit://u:p@h``) and key=value pairs."""
    if text is None:
        return text
    masked = _URL_USERINFO.sub(
        lambda m: "%s%s:***@" % (m.group("scheme"), m.group("user")),
        str(text))
    return strutils.mask_password(masked)
