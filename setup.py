import setuptools

setuptools.setup(
    name="poolmgr",
    version="0.1.0",
    description="Turns Nova host aggregates into XenServer resource pools",
    long_description=open("README.rst").read(),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.9",
    # NOTE(packaging): alembic lives at the top level in migrations/ but must
    # ship inside the installed package, or `poolmgr-manage db sync` would only
    # work from a checkout.
    packages=setuptools.find_packages(include=["poolmgr", "poolmgr.*"])
    + ["poolmgr.migrations", "poolmgr.migrations.versions"],
    package_dir={
        "poolmgr.migrations": "migrations",
        "poolmgr.migrations.versions": "migrations/versions",
    },
    package_data={"poolmgr.migrations": ["alembic.ini", "script.py.mako"]},
    install_requires=[
        "oslo.messaging>=14.0.0",
        "oslo.db>=12.0.0",
        "oslo.config>=9.0.0",
        "oslo.log>=5.0.0",
        "oslo.utils>=6.0.0",
        "SQLAlchemy>=1.4.0",
        "alembic>=1.8.0",
        "PyMySQL>=1.0.0",
        "XenAPI>=2.14",
        "cotyledon>=1.7.3",
        "tenacity>=8.0.0",
        "prometheus-client>=0.16.0",
        "prettytable>=3.0.0",
        "setproctitle>=1.3.0",
        "cryptography>=38.0.0",
        "keystoneauth1>=5.0.0",
        "openstacksdk>=1.0.0",
    ],
    extras_require={
        "test": [
            "pytest>=7.0",
            "hypothesis>=6.0",
            "ruff>=0.4",
            "docutils>=0.18",
            "kombu>=5.0",
            "psutil>=5.9",
            # The docs build runs in the suite (tests/unit/test_docs.py);
            # doc/requirements.txt lists the same for `tox -e docs`.
            "sphinx>=7.0",
            "sphinx-argparse>=0.4",
            "reno>=4.0",
        ],
    },
    entry_points={
        "console_scripts": [
            "poolmgr = poolmgr.cmd.daemon:main",
            "poolmgr-manage = poolmgr.cmd.manage:main",
            "poolmgr-xapi-sim = poolmgr.simulator.cli:main",
            "poolmgr-demo = poolmgr.cmd.demo:main",
        ],
        "oslo.config.opts": [
            "poolmgr = poolmgr.opts:list_opts",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Environment :: OpenStack",
    ],
)
