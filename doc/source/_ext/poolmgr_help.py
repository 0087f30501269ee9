"""``.. command-help:: module:function``: a command's ``--help``, verbatim.

For the commands whose parser is not an argparse parser of their own
(``poolmgr`` parses its command line with oslo.config), the reference shows
exactly what the command prints for ``--help``: it is run at build time in a
child process, so the page cannot drift from the code.

    .. command-help:: poolmgr.cmd.daemon:main
       :prog: poolmgr
"""

import os
import subprocess
import sys

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

_RUN = (
    "import sys\n"
    "sys.argv[0] = %(prog)r\n"
    "from %(module)s import %(func)s\n"
    "sys.exit(%(func)s())\n"
)


class CommandHelp(SphinxDirective):
    required_arguments = 1
    option_spec = {"prog": directives.unchanged_required}

    def run(self):
        module, _, func = self.arguments[0].partition(":")
        prog = self.options.get("prog", module.rsplit(".", 1)[-1])
        # NOTE(width): argparse wraps to $COLUMNS; fix it so the page is the
        # same on every terminal and CI machine.
        root = os.path.abspath(os.path.join(str(self.env.srcdir), "..", ".."))
        env = dict(os.environ, COLUMNS="79", PYTHONPATH=root)
        code = _RUN % {"prog": prog, "module": module, "func": func or "main"}
        try:
            done = subprocess.run(
                [sys.executable, "-c", code, "--help"], env=env,
                capture_output=True, text=True, timeout=60,
                cwd=root)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise self.error("%s --help could not run: %s" % (prog, exc))
        if done.returncode != 0 or not done.stdout.strip():
            raise self.error("%s --help exited %d: %s" % (
                prog, done.returncode, done.stderr.strip()[-2000:]))
        text = done.stdout.rstrip()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("command-help", CommandHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
