"""Keep the site's promise: every code block is a tested file from snippets/.

Warns (so ``-W`` fails the build) when a page has a code block that was not
included from snippets/, when an include selects nothing or points past its
file, and when a file in snippets/ is shown on no page. Violations are stored
in the environment and reported again at the end of every build, so a no-op
incremental build fails as the fresh one did; parallel reads merge them.

Each include is captioned with its file name and followed by a line naming
the tests that verified it, read from the file the test suite writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.directives.code import LiteralInclude
from sphinx.environment import BuildEnvironment
from sphinx.util import logging, parselinenos

logger = logging.getLogger(__name__)
SHOWN_TESTS = 3  # Past this many tests, the line says "and N more".


def snippet_files(root: Path) -> list[Path]:
    """Every file a page must show; hidden files and caches are not shown."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__"
            for part in path.relative_to(root).parts
        )
    )


def load_results(path: Path) -> dict[str, list[str]] | None:
    """The tests that exercised each snippet in the last passing run, if any."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def verified_line(tests: list[str] | None) -> nodes.paragraph:
    if tests is None:
        text = "Not yet verified: run make doctest, then build again."
    elif not tests:
        text = "Not verified: no test exercised this file in the last run."
    else:
        text = "Verified by " + ", ".join(tests[:SHOWN_TESTS])
        if len(tests) > SHOWN_TESTS:
            text += f" and {len(tests) - SHOWN_TESTS} more"
    return nodes.paragraph(text, text, classes=["snippet-verified"])


def past(spec: str, total: int, what: str, violation: Any) -> None:
    """Flag a line spec that names a line beyond the last of total."""
    try:
        beyond = max(parselinenos(spec, total), default=0) >= total
    except ValueError:
        beyond = True
    if beyond:
        violation(f"line spec {spec!r} points past {what} {total} lines")


class SnippetInclude(LiteralInclude):
    """``literalinclude`` that records what it shows and checks what it selects."""

    def run(self) -> list[nodes.Node]:
        env = self.env
        root = env.snippet_root
        path = Path(env.relfn2path(self.arguments[0])[1]).resolve()
        shown = path.is_relative_to(root) and path.is_file()
        name = path.relative_to(root).as_posix() if shown else None

        def violation(message: str) -> None:
            env.snippet_violations.setdefault(env.docname, []).append(
                (self.lineno, f"{self.arguments[0]}: {message}")
            )

        if not path.is_relative_to(root):
            violation(f"included file is not under {root.name}/")
        if name:
            env.snippet_includes.setdefault(env.docname, set()).add(name)
            self.options.setdefault("caption", f"{root.name}/{name}")
            if "lines" in self.options:
                total = len(path.read_text(encoding="utf-8").splitlines())
                past(self.options["lines"], total, "the file's", violation)

        result = super().run()  # On failure: a system message, and no block.
        for node in result:
            for message in node.findall(nodes.system_message):
                violation(message.astext())
            for block in node.findall(nodes.literal_block):
                block["snippet"] = True
                lines = block.astext().splitlines()
                if not "".join(lines).strip():
                    violation("the include selects no lines")
                if "emphasize-lines" in self.options:
                    past(
                        self.options["emphasize-lines"],
                        len(lines),
                        "the shown",
                        violation,
                    )
        if name:
            results = env.snippet_results
            result.append(
                verified_line(None if results is None else results.get(name, []))
            )
        return result


def check_code_blocks(app: Sphinx, doctree: nodes.document) -> None:
    """Record every code block on the page that no snippet include produced."""
    env = app.env
    for node in doctree.findall(
        lambda n: isinstance(n, nodes.literal_block | nodes.doctest_block)
    ):
        if not node.get("snippet"):
            kind = (
                "doctest block"
                if isinstance(node, nodes.doctest_block)
                else "code block"
            )
            env.snippet_violations.setdefault(env.docname, []).append(
                (node.line, f"inline {kind}: include it from a file in snippets/")
            )


def init_env(app: Sphinx) -> None:
    env = app.env
    env.snippet_root = Path(app.confdir, app.config.snippet_dir).resolve()
    env.snippet_results = load_results(Path(app.confdir, app.config.snippet_results))
    for name in ("snippet_includes", "snippet_violations"):
        if not hasattr(env, name):
            setattr(env, name, {})


def purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    env.snippet_includes.pop(docname, None)
    env.snippet_violations.pop(docname, None)


def merge_info(
    app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment
) -> None:
    for docname in docnames:
        for name in ("snippet_includes", "snippet_violations"):
            if docname in getattr(other, name):
                getattr(env, name)[docname] = getattr(other, name)[docname]


def outdated(
    app: Sphinx,
    env: BuildEnvironment,
    added: set[str],
    changed: set[str],
    removed: set[str],
) -> list[str]:
    """Re-read pages with includes when the test results changed."""
    if getattr(env, "snippet_results_seen", None) == env.snippet_results:
        return []
    env.snippet_results_seen = env.snippet_results
    return sorted(env.snippet_includes)


def report(app: Sphinx, error: Exception | None) -> None:
    """Warn about every stored violation and every file no page shows."""
    if error is not None:
        return
    env = app.env
    for docname in sorted(env.snippet_violations):
        for line, message in env.snippet_violations[docname]:
            logger.warning(message, location=(docname, line), type="snippet")
    root = env.snippet_root
    shown = set().union(*env.snippet_includes.values())
    for path in snippet_files(root):
        if path.relative_to(root).as_posix() not in shown:
            logger.warning(
                "shown on no page: include it, or delete it",
                location=f"{path.relative_to(Path(app.confdir).resolve())}:1",
                type="snippet",
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("snippet_dir", "snippets", "env", str)
    app.add_config_value("snippet_results", "build/verified.json", "", str)
    app.add_directive("literalinclude", SnippetInclude, override=True)
    app.connect("builder-inited", init_env)
    app.connect("env-purge-doc", purge_doc)
    app.connect("env-merge-info", merge_info)
    app.connect("env-get-outdated", outdated)
    app.connect("doctree-read", check_code_blocks)
    app.connect("build-finished", report)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
