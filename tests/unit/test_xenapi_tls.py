"""Fingerprint spelling: what an operator pastes becomes one canonical pin."""

import hashlib

import pytest

from poolmgr.xenapi import tls

CANONICAL = ":".join(["0A"] * 31 + ["FF"])


@pytest.mark.parametrize("given", [
    CANONICAL,
    CANONICAL.lower(),
    CANONICAL.replace(":", ""),
    "SHA256 Fingerprint=" + CANONICAL,
    "sha256:" + CANONICAL.replace(":", "").lower(),
    "  %s\n" % CANONICAL,
])
def test_every_spelling_of_a_fingerprint_normalises_to_one(given):
    assert tls.normalise_fingerprint(given) == CANONICAL


@pytest.mark.parametrize("given", [
    "", "0A:0B", CANONICAL + ":00", CANONICAL.replace("0A", "0G", 1),
    # a SHA-1 fingerprint is 40 hex digits: not a SHA-256 pin
    "AB" * 20,
])
def test_what_is_not_a_sha256_fingerprint_is_refused(given):
    with pytest.raises(ValueError):
        tls.normalise_fingerprint(given)


def test_fingerprint_of_der_is_its_sha256_in_pairs():
    der = b"not really DER, any bytes hash"
    digest = hashlib.sha256(der).hexdigest().upper()
    assert tls.fingerprint(der).replace(":", "") == digest
    assert len(tls.fingerprint(der)) == 95
