"""The wheel carries the alembic tree, so db sync works when installed."""

import subprocess
import sys
import zipfile

import pytest


def test_wheel_ships_migrations_inside_the_package(tmp_path):
    root = __file__.rsplit("/tests/", 1)[0]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
         str(tmp_path), root], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail("building the wheel failed: %s" % result.stderr[-2000:])
    wheel = next(tmp_path.glob("poolmgr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("poolmgr/migrations/env.py",
                     "poolmgr/migrations/alembic.ini",
                     "poolmgr/migrations/versions/0001_initial.py",
                     "poolmgr/db/migration.py"):
        assert required in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for script in ("poolmgr =", "poolmgr-manage =", "poolmgr-xapi-sim =",
                   "poolmgr-demo ="):
        assert script in entry_points
