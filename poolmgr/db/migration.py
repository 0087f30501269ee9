"""Schema migrations with alembic, from the copy shipped in the package."""

import importlib.resources

from alembic import command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script

from poolmgr.db import api


def _config(connection=None):
    # NOTE(packaging): the alembic tree is installed as poolmgr.migrations
    # (setup.py maps it from the top-level migrations/), so this works the
    # same from a wheel and from a checkout.
    location = importlib.resources.files("poolmgr.migrations")
    cfg = alembic_config.Config(str(location / "alembic.ini"))
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(revision="head"):
    """Create or upgrade the schema of the configured database."""
    with api.get_engine().begin() as connection:
        command.upgrade(_config(connection), revision)


def version():
    """The revision the database is at (None when it has no schema)."""
    with api.get_engine().connect() as connection:
        context = alembic_migration.MigrationContext.configure(connection)
        return context.get_current_revision()


def head():
    return alembic_script.ScriptDirectory.from_config(_config()).get_current_head()


def script_directory():
    return alembic_script.ScriptDirectory.from_config(_config())
