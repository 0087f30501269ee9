"""Talking to xapi: sessions, whole-pool reads, mutating calls, errors.

``records`` (the plain-data snapshot of a pool) has no I/O and is what the
pure modules (planner, preflight, readiness) consume; ``session`` and
``operations`` are the thin shell around the PyPI ``XenAPI`` client.
"""
