"""Fixtures of the fault matrix (``tox -e faults``)."""

import pytest

from tests.faults import support


@pytest.fixture
def bed(tmp_path, rabbit_url, mysql_url, simulator):
    """Bus names, a fresh database, a simulator factory and daemons."""
    world = support.Bed(tmp_path, rabbit_url, mysql_url, simulator)
    yield world
    world.cleanup()
