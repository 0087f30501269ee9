"""README.rst opens with the two set-up commands and renders cleanly."""

import pathlib
import re
import subprocess

import docutils.core
import docutils.utils

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _literal_lines():
    text = (ROOT / "README.rst").read_text()
    first_block = text.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in first_block.splitlines()]


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = _literal_lines()
    assert demo == "pip install . && poolmgr-demo"
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    pattern = re.search(r"sed -n '(.*?)' README.rst", script).group(1)
    extracted = subprocess.run(
        ["sed", "-n", pattern, str(ROOT / "README.rst")],
        capture_output=True, text=True).stdout
    assert extracted.splitlines()[0] == _literal_lines()[1]


def test_readme_renders_without_warnings():
    docutils.core.publish_doctree(
        (ROOT / "README.rst").read_text(),
        settings_overrides={
            "halt_level": docutils.utils.Reporter.WARNING_LEVEL,
            "report_level": 5})


def test_readme_is_short():
    # NOTE(docs): the README says what poolmgr is and how to start; the
    # guide, the design and the references live in doc/source.
    lines = (ROOT / "README.rst").read_text().splitlines()
    assert len(lines) < 300, "README.rst has %d lines" % len(lines)


def test_readme_points_only_at_doc_pages_that_exist():
    text = (ROOT / "README.rst").read_text()
    paths = re.findall(r"``(doc/source/[\w./-]+)``", text)
    assert len(paths) >= 5
    assert [p for p in paths if not (ROOT / p).exists()] == []
