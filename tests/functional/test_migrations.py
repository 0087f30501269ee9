"""The alembic revisions and the models agree, on a real MySQL server."""

from oslo_db.sqlalchemy import test_migrations
import sqlalchemy as sa

from poolmgr.db import api as db_api
from poolmgr.db import migration
from poolmgr.db import models


def test_revisions_have_one_head_and_one_base():
    scripts = migration.script_directory()
    assert len(scripts.get_heads()) == 1
    assert len(scripts.get_bases()) == 1


def test_every_revision_upgrades_from_empty_on_mysql(mysql_empty_url):
    db_api.configure_url(mysql_empty_url)
    scripts = migration.script_directory()
    revisions = [r.revision for r in scripts.walk_revisions()][::-1]
    for revision in revisions:
        migration.upgrade(revision)
        assert migration.version() == revision
    assert migration.version() == migration.head()


def test_sync_twice_is_a_noop(mysql_url):
    engine = db_api.get_engine()
    before = sorted(sa.inspect(engine).get_table_names())
    migration.upgrade()
    assert migration.version() == migration.head()
    assert sorted(sa.inspect(engine).get_table_names()) == before
    assert {"aggregates", "hosts", "pools", "pool_members", "operations",
            "notifications", "alembic_version"} <= set(before)


class _ModelsMatchMigrations(test_migrations.ModelsMigrationsSync):
    """oslo.db's comparison of the migrated schema with the models."""

    def __init__(self, engine):
        self._engine = engine

    def get_engine(self):
        return self._engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        migration.upgrade()

    # unittest-style assertions used by ModelsMigrationsSync
    def assertTrue(self, value, msg=None):  # noqa: N802
        assert value, msg

    def fail(self, msg):
        raise AssertionError(msg)

    def addCleanup(self, function, *args, **kwargs):  # noqa: N802
        # the database is dropped by the mysql_empty_url fixture
        pass


def test_models_and_migrations_agree_on_mysql(mysql_empty_url):
    db_api.configure_url(mysql_empty_url)
    _ModelsMatchMigrations(db_api.get_engine()).test_models_sync()
