"""Each simulated host's own self-signed certificate, as xapi makes one.

A real XenServer host generates a self-signed certificate at install time
(``xe host-refresh-server-certificate`` makes a new one) and serves the API
over HTTPS with it. The simulator does the same at start, with the host's
address in the subjectAltName, so clients meet what they meet in the field:
a certificate no CA signed.
"""

import datetime
import hashlib
import ipaddress
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# NOTE(validity): xapi's gencert makes certificates valid for ten years.
DEFAULT_DAYS = 3650
# NOTE(tls-sniff): the first byte of a TLS ClientHello record.
TLS_HANDSHAKE = 0x16


def fingerprint(der):
    """SHA-256 of a DER certificate as ``openssl x509 -fingerprint`` shows
    it: upper-case hex pairs joined by colons."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class HostCertificate:
    """One host's key, certificate and the server context serving them."""

    def __init__(self, name, address, uuid, days=DEFAULT_DAYS):
        # NOTE(key): P-256 rather than xapi's RSA-2048: the same for
        # clients, and hundreds of hosts start in a second.
        key = ec.generate_private_key(ec.SECP256R1())
        # NOTE(subject): the host uuid beside the name keeps subjects
        # unique across simulators (all have an xs01); OpenSSL finds a
        # trusted self-signed certificate by its subject.
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, uuid),
            x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([
                    x509.IPAddress(ipaddress.ip_address(address)),
                    x509.DNSName(name)]), critical=False)
                .sign(key, hashes.SHA256()))
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.sha256_fingerprint = fingerprint(self.der)
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        self.context = _server_context(self.pem.encode() + key_pem)


def _server_context(pem):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # NOTE(files): load_cert_chain only reads files; the file lives just
    # long enough to be read.
    fd, path = tempfile.mkstemp(prefix="xapi-sim-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
    return context
