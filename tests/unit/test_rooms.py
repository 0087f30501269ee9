"""The rooms hold: a module's place says what it may import.

Read from the source with ``ast`` (nothing is imported), so a room that
starts reaching into another fails here, named, before review.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "poolmgr"
MAX_LINES = 400


def _modules(folder=PACKAGE):
    return sorted(p for p in folder.rglob("*.py"))


def _imports(path):
    """Every module name ``path`` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update("%s.%s" % (node.module, alias.name)
                         for alias in node.names)
    return names


def _rel(path):
    return str(path.relative_to(ROOT))


def test_no_module_is_over_400_lines():
    long = ["%s (%d)" % (_rel(p), len(p.read_text().splitlines()))
            for p in _modules()
            if len(p.read_text().splitlines()) > MAX_LINES]
    assert long == []


@pytest.mark.parametrize("path", _modules(PACKAGE / "plan"), ids=_rel)
def test_the_plan_imports_neither_the_database_nor_xapi_sessions(path):
    forbidden = ("poolmgr.db", "poolmgr.xenapi.session",
                 "poolmgr.xenapi.operations", "poolmgr.engine",
                 "poolmgr.nova", "poolmgr.service", "poolmgr.cmd",
                 "sqlalchemy", "XenAPI", "oslo_messaging", "keystoneauth1")
    reached = sorted(name for name in _imports(path)
                     if name.startswith(forbidden))
    assert reached == []


@pytest.mark.parametrize("path", sorted(
    (PACKAGE / "cmd").glob("views*.py")), ids=_rel)
def test_views_format_what_they_are_given(path):
    """Views take rows from the command modules; only the states'
    names come from the database package."""
    reached = sorted(name for name in _imports(path)
                     if name.startswith("poolmgr.db")
                     and name not in ("poolmgr.db", "poolmgr.db.states"))
    assert reached == []


def test_arrows_point_one_way():
    """Nothing outside cmd/ imports the service; nothing below the
    engine imports it; the simulator imports nothing of poolmgr."""
    wrong = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).parts
        names = _imports(path)
        if rel[0] != "cmd" and any(n.startswith(("poolmgr.service",
                                                 "poolmgr.cmd"))
                                   for n in names):
            wrong.append("%s imports the service or a command" % _rel(path))
        if rel[0] in ("plan", "db", "xenapi", "nova", "intake") and any(
                n.startswith("poolmgr.engine") for n in names):
            wrong.append("%s imports the engine" % _rel(path))
        if rel[0] == "simulator" and any(
                n.startswith("poolmgr.") and
                not n.startswith("poolmgr.simulator") for n in names):
            wrong.append("%s imports poolmgr outside the simulator"
                         % _rel(path))
    assert wrong == []


def test_no_former_homes_are_left():
    """The modules that moved live only in their new rooms (no re-export
    shim under the old name), and the demo's Nova double is not among the
    production modules."""
    former = ["planner.py", "planner_steps.py", "planner_computevm.py",
              "planner_failover.py", "preflight.py", "readiness.py",
              "desired.py", "computevm.py", "proof.py", "nova.py",
              "novasync.py", "reflect.py", "fakenova.py", "notifications.py"]
    assert [name for name in former if (PACKAGE / name).exists()] == []
    doubles = [_rel(p) for p in _modules() if "fakenova" in p.name
               and p.parent.name != "simulator"]
    assert doubles == []
