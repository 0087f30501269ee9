"""Schema migrations with alembic, from the copy shipped in the package."""

import importlib.resources
import pathlib

from poolmgr.db import api


def migrations_dir():
    """Where the alembic tree is: inside the installed package, or beside it.

    NOTE(packaging): setup.py installs the top-level migrations/ as the
    package poolmgr.migrations, so a wheel carries it; a checkout on
    sys.path (tests run from the tree) has it one level up instead.
    """
    try:
        location = importlib.resources.files("poolmgr.migrations")
        if (location / "env.py").is_file():
            return pathlib.Path(str(location))
    except ModuleNotFoundError:
        pass
    return pathlib.Path(__file__).resolve().parents[2] / "migrations"


def _config(connection=None):
    # NOTE(lean): alembic (with mako and pygments, 10 MB) is imported by the
    # functions that run it, not by the reconciler that imports this module
    # for describe_error and never needs it unless the schema is wrong.
    from alembic import config as alembic_config
    location = migrations_dir()
    cfg = alembic_config.Config(str(location / "alembic.ini"))
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(revision="head"):
    """Create or upgrade the schema of the configured database."""
    from alembic import command
    with api.get_engine().begin() as connection:
        command.upgrade(_config(connection), revision)


def version():
    """The revision the database is at (None when it has no schema)."""
    from alembic import migration as alembic_migration
    with api.get_engine().connect() as connection:
        context = alembic_migration.MigrationContext.configure(connection)
        return context.get_current_revision()


def head():
    return script_directory().get_current_head()


def script_directory():
    from alembic import script as alembic_script
    return alembic_script.ScriptDirectory.from_config(_config())


def schema_problem():
    """One line for an operator when the schema is missing or behind, or None.

    Asked after a database error: a table or column that is not there is
    almost always a database nobody ran ``db sync`` on.
    """
    try:
        current, latest = version(), head()
    except Exception:  # noqa: BLE001 - the database itself is the problem
        return None
    if current == latest:
        return None
    if current is None:
        return ("the database has no poolmgr schema: run `poolmgr-manage "
                "db sync`")
    return ("the database schema is at revision %s, this poolmgr needs %s: "
            "run `poolmgr-manage db sync`" % (current, latest))


def describe_error(exc):
    """One line, without secrets, for a database error: what to do if known.

    A missing or old schema says run ``db sync``; anything else is the
    driver's first line (e.g. "Can't connect to MySQL server").
    """
    from poolmgr import utils
    problem = schema_problem()
    if problem:
        return problem
    reason = getattr(exc, "inner_exception", None) or exc
    text = (str(reason).strip().splitlines() or [type(exc).__name__])[0]
    return utils.mask_url(text)[:300]
