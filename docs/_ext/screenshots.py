"""Show the screenshots the browser tests took, or say that none was taken yet.

``.. screenshot:: two-windows.png`` shows ``build/screenshots/two-windows.png``
(the ``screenshot_dir`` setting, relative to conf.py), which the Playwright
tests write during ``make doctest``: so the picture is of the page as it is
now. Before any test run the build shows a placeholder sentence instead, as
the "Verified by" lines do. The page depends on the file: a build after a new
screenshot re-reads it.

``.. test-output:: metrics.txt`` does the same for a text a test wrote there
(a real scrape, a real log): shown preformatted, as HTML, so it is neither a
code block of the page nor a snippet.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


class FileFigure(SphinxDirective):
    """A figure of a file the tests wrote, or a placeholder before any run.

    The directive's name is the figure's class; its content is the caption.
    """

    required_arguments = 1
    has_content = True
    what = ""  # What the placeholder says is missing.

    def show(self, path: Path) -> nodes.Node:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        env = self.env
        root = Path(env.app.confdir, env.config.screenshot_dir).resolve()
        path = root / self.arguments[0]
        env.note_dependency(path)  # Re-read when the file appears or changes.
        figure = nodes.figure(classes=[self.name])
        if path.is_file():
            figure += self.show(path)
        else:
            text = f"No {self.what} yet ({path.name}): run make doctest, then build."
            figure += nodes.paragraph(text, text, classes=["screenshot-missing"])
        if self.content:
            caption = nodes.caption()
            caption += self.parse_inline(" ".join(self.content))[0]
            figure += caption
        return [figure]


class Screenshot(FileFigure):
    """A screenshot the browser tests took."""

    option_spec: ClassVar = {"alt": directives.unchanged_required}
    what = "screenshot"

    def show(self, path: Path) -> nodes.Node:
        here = Path(self.env.doc2path(self.env.docname)).parent
        relative = Path(os.path.relpath(path, here)).as_posix()
        return nodes.image(uri=relative, alt=self.options.get("alt", ""))


class TestOutput(FileFigure):
    """A text a test wrote (a real scrape, a real log), preformatted."""

    what = "test output"

    def show(self, path: Path) -> nodes.Node:
        text = html.escape(path.read_text(encoding="utf-8"))
        return nodes.raw("", f'<pre class="test-output">{text}</pre>', format="html")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("screenshot_dir", "build/screenshots", "env", str)
    app.add_directive("screenshot", Screenshot)
    app.add_directive("test-output", TestOutput)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
