"""The Sphinx documentation builds without a warning, and its references
cover the code: every option of ``list_opts()`` and every command line.

CI runs only the README's test command, so the docs build lives here.
"""

import argparse
import html
import pathlib
import re
import subprocess
import sys

import pytest

from poolmgr.cmd import demo
from poolmgr.cmd import manage
from poolmgr import opts
from poolmgr.simulator import cli as sim_cli

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs-html")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
         "-b", "html", str(ROOT / "doc" / "source"), str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    return done, out


def _text(out, page):
    raw = (out / page).read_text()
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def test_docs_build_without_warnings(built):
    done, _ = built
    assert done.returncode == 0, (
        "sphinx-build -W failed (exit %d):\n%s\n%s"
        % (done.returncode, done.stdout[-5000:], done.stderr[-10000:]))


def test_config_reference_lists_every_option(built):
    done, out = built
    assert done.returncode == 0, done.stderr[-5000:]
    page = (out / "reference" / "config.html").read_text()
    missing = ["[%s] %s" % (group.name, opt.name)
               for group, group_opts in opts.list_opts()
               for opt in group_opts
               if 'id="%s.%s"' % (group.name, opt.dest) not in page]
    assert not missing, "not in the configuration reference: %s" % missing


def _parsers(parser):
    """The parser and every subcommand's parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _usage(parser):
    text = parser.format_usage()
    return " ".join(text.split())[len("usage: "):]


@pytest.mark.parametrize("build_parser", [
    manage.build_parser, sim_cli.build_parser, demo.build_parser],
    ids=["poolmgr-manage", "poolmgr-xapi-sim", "poolmgr-demo"])
def test_cli_reference_lists_every_command_with_its_flags(built,
                                                          build_parser):
    done, out = built
    assert done.returncode == 0, done.stderr[-5000:]
    page = _text(out, "reference/cli.html")
    parsers = list(_parsers(build_parser()))
    # A usage line names the command and every one of its flags.
    missing = [_usage(p) for p in parsers if _usage(p) not in page]
    assert not missing, "not in the CLI reference: %s" % missing
    flags = [flag for p in parsers for action in p._actions
             for flag in action.option_strings
             if action.help != argparse.SUPPRESS]
    assert [f for f in flags if f not in page] == []


def test_cli_reference_shows_the_daemons_help(built):
    done, out = built
    assert done.returncode == 0, done.stderr[-5000:]
    page = _text(out, "reference/cli.html")
    assert "usage: poolmgr [-h] [--config-dir DIR] [--config-file PATH]" \
        in page


def test_tuning_page_states_the_code_defaults():
    # The tuning page names each option with its default; a changed default
    # must change the page too.
    text = (ROOT / "doc" / "source" / "admin" / "tuning.rst").read_text()
    stated = re.findall(r":oslo.config:option:`(\w+)\.(\w+)` \(([\d.]+)",
                        text)
    defaults = {(group.name, opt.dest): opt.default
                for group, group_opts in opts.list_opts()
                for opt in group_opts}
    assert len(stated) >= 20
    wrong = [(g, n, v, defaults.get((g, n))) for g, n, v in stated
             if defaults.get((g, n)) is None
             or float(v) != float(defaults[(g, n)])]
    assert not wrong, "page, code: %s" % wrong
