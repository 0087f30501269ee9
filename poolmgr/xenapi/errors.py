"""One error family for everything xapi (or the wire to it) can say."""

# NOTE(transient): codes that describe a moment, not a configuration: a host
# restarting after join/eject/designate, an operation already running, a
# member whose heartbeat has not arrived yet. Everything else is permanent
# and parks the member until desired state changes or an operator retries.
TRANSIENT_CODES = frozenset([
    "CONNECTION_FAILED",
    "TIMEOUT",
    "PROTOCOL_ERROR",
    "SESSION_INVALID",
    "HOST_IS_SLAVE",
    "HOST_STILL_BOOTING",
    "HOST_OFFLINE",
    "HOST_NOT_LIVE",
    "CANNOT_CONTACT_HOST",
    "HOST_MASTER_CANNOT_TALK_BACK",
    "OTHER_OPERATION_IN_PROGRESS",
    "DESIGNATE_NEW_MASTER_IN_PROGRESS",
    "HA_ENABLE_IN_PROGRESS",
    "HA_DISABLE_IN_PROGRESS",
    "JOINING_HOST_CONNECTION_FAILED",
    "JOINING_HOST_SERVICE_FAILED",
    "TOO_BUSY",
    "POOLMGR_WAIT_TIMEOUT",
])


class XapiError(Exception):
    """xapi refused a call, or could not be reached.

    ``code`` and ``params`` are xapi's ``ErrorDescription`` (or a
    poolmgr code such as CONNECTION_FAILED for failures below xapi);
    ``url`` is masked, never carries a password.
    """

    def __init__(self, code, params=(), method=None, url=None):
        self.code = str(code)
        self.params = [str(p) for p in params]
        self.method = method
        self.url = url
        super().__init__(self._describe())

    def _describe(self):
        text = self.code
        if self.params:
            text += " " + " ".join(self.params)
        if self.method:
            text += " (%s" % self.method
            text += " on %s)" % self.url if self.url else ")"
        return text

    @property
    def transient(self):
        return self.code in TRANSIENT_CODES


class XapiUnreachable(XapiError):
    """The host did not answer: refused, reset, timed out, TLS failure."""

    def __init__(self, reason, method=None, url=None,
                 code="CONNECTION_FAILED"):
        super().__init__(code, [reason], method=method, url=url)


def is_transient(exc):
    return isinstance(exc, XapiError) and exc.transient
