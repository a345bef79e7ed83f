"""Keep the site's promise: every code block is a tested file from snippets/.

Warns (so ``-W`` fails the build), once per problem and at the page's line,
when a page has a code block that was not included from snippets/ (doctest
directives included, hidden ones too), when an include selects nothing or
badly, names a file outside snippets/, or uses ``:diff:``, when a file in
snippets/ is a symbolic link, and when a file in snippets/ is shown on no page.
Warnings have the type ``snippet`` and a subtype (``inline``, ``include``,
``path``, ``symlink``, ``orphan``) for ``suppress_warnings``.

Problems found while reading a page are stored in the environment and that
page is read again on every build until they are gone, so a no-op incremental
build fails as the fresh one did, and a fixed problem is never reported again.

After the last include of each file on a page comes one footer: a download
link and what the tests said about the file, keyed by the file's content
(``build/verified.json``, written by the test suite). An HTML build copies
snippets/ next to the pages and zips it into ``snippets.zip``.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import zipfile
from logging import WARNING
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.directives.code import LiteralInclude
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, is_directive_registered
from sphinx.util.osutil import relative_uri

logger = logging.getLogger(__name__)
ENV_VERSION = 2  # Raise whenever the data stored on env changes shape.
# Directives of sphinx.ext.doctest: code written in the page, shown or hidden.
DOCTEST_DIRECTIVES = ("doctest", "testsetup", "testcleanup", "testcode", "testoutput")
SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "  # In test names.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # The same bytes for the same files.


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in parts)


def snippet_entries(root: Path) -> list[Path]:
    """Every entry a page must show, in order; hidden files and caches are not
    shown. Symbolic links are listed but not followed."""
    found = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        dirs[:] = [d for d in dirs if not _hidden((d,))]
        for name in dirs + files:
            path = base / name
            if not _hidden((name,)) and (name in files or path.is_symlink()):
                found.append(path)
    return sorted(found)


def snippet_files(root: Path) -> list[Path]:
    """The regular files a page must show (what the downloads hold)."""
    return [p for p in snippet_entries(root) if not p.is_symlink()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_results(path: Path) -> dict[str, dict[str, Any]] | None:
    """Each file's content hash and tests in the last passing run, if any.

    The format is ``{"echo.py": {"sha256": "...", "tests": ["tests/..."]}}``;
    an older file, without hashes, counts as no run at all.
    """
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if not all(isinstance(v, dict) and "sha256" in v for v in results.values()):
        return None
    return results


def readable(test_id: str) -> str:
    """``tests/test_a.py::test_b[x]`` as ``test_a.py``, SEPARATOR, ``test_b[x]``."""
    return SEPARATOR.join(test_id.removeprefix("tests/").split("::"))


def status(results: dict[str, Any] | None, name: str, path: Path) -> tuple[str, list]:
    """What the footer says about a file, and the tests it lists."""
    if results is None:
        return "Not yet verified: run make doctest, then build again.", []
    record = results.get(name, {})
    if not record.get("tests"):
        return "Not verified: no test exercised this file in the last run.", []
    if not path.is_file() or sha256(path) != record["sha256"]:
        return "Changed since it was last verified: run make doctest again.", []
    count = len(record["tests"])
    return f"Verified by {count} test{'s' if count > 1 else ''}", record["tests"]


class AnyOption(dict):
    """An option spec that accepts every option, so a refused directive is
    refused for what it is, not for an option it happens to have."""

    def __missing__(self, key: str) -> Any:
        return directives.unchanged


class RefusedDoctest(SphinxDirective):
    """Stands in for sphinx.ext.doctest's directives when it is not loaded."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = AnyOption(hide=directives.flag)

    def run(self) -> list[nodes.Node]:
        violation(self.env, self.lineno, inline(self.name), "inline")
        return []


def inline(kind: str) -> str:
    return f"inline {kind}: include it from a file in snippets/"


def violation(env: BuildEnvironment, line: int | None, message: str, subtype: str):
    env.snippet_violations.setdefault(env.docname, []).append((line, message, subtype))


def misplaced(argument: str, path: Path, root: Path, page: Path) -> tuple[str, Path]:
    """Why an include outside snippets/ is refused, what to write, and the
    file in snippets/ it probably means."""
    if not argument.startswith("/"):
        message = f"{argument}: not under {root.name}/: include files from there only"
        return message, path
    meant = root / argument.lstrip("/").removeprefix(f"{root.name}/")
    message = (
        f"{argument}: a leading / starts at the source folder, so this names "
        f"{path}; write {os.path.relpath(meant, page.parent)}"
    )
    return message, meant


class SnippetInclude(LiteralInclude):
    """``literalinclude`` that records what it shows and checks what it selects."""

    def run(self) -> list[nodes.Node]:
        env = self.env
        root = env.snippet_root
        argument = self.arguments[0]
        page = Path(env.doc2path(env.docname))
        # Named by the normalised path, never the resolved one: a link is a
        # file of its own (and is refused, once, at the end of the build).
        parts = Path(argument).parts
        if parts[:1] in {("/",), ("\\",)}:
            path = Path(os.path.normpath(env.srcdir.joinpath(*parts[1:])))
        else:
            path = Path(os.path.normpath(page.parent / argument))
        if not path.is_relative_to(root):
            message, meant = misplaced(argument, path, root, page)
            if (
                meant.is_relative_to(root) and meant.is_file()
            ):  # What it names is clear: not also an orphan.
                name = meant.relative_to(root).as_posix()
                env.snippet_includes.setdefault(env.docname, set()).add(name)
            violation(env, self.lineno, message, "path")
            return []
        name = path.relative_to(root).as_posix()
        if path.is_file():
            env.snippet_includes.setdefault(env.docname, set()).add(name)
        if "diff" in self.options:
            message = (
                f"{argument}: :diff: is not supported: show the file itself, "
                "with :emphasize-lines: on what changed"
            )
            violation(env, self.lineno, message, "include")
            return []
        self.options.setdefault("caption", f"{root.name}/{name}")

        # Sphinx's own warnings (file not found, a pattern or object missing,
        # a line spec out of range) become violations: stored, so repeated on
        # every build, and printed once.
        collector = logging.LogCollector()
        with collector.collect():
            result = super().run()
        said = [r.getMessage() for r in collector.logs if r.levelno >= WARNING]
        if said:
            violation(env, self.lineno, f"{argument}: {'; '.join(said)}", "include")

        for node in result:
            if isinstance(node, nodes.system_message):
                continue
            node["snippet_file"] = name
            for block in node.findall(nodes.literal_block):
                block["snippet"] = name
                if not block.astext().strip():
                    message = f"{argument}: the include selects no lines"
                    violation(env, self.lineno, message, "include")
        return result


def refuse_doctest_directives(app: Sphinx) -> None:
    """Without sphinx.ext.doctest, its directives are refused as inline code
    (with it, check_code_blocks finds the nodes they make)."""
    for name in DOCTEST_DIRECTIVES:
        if not is_directive_registered(name):
            app.add_directive(name, RefusedDoctest)


def check_code_blocks(app: Sphinx, doctree: nodes.document) -> None:
    """Record every code block on the page that no snippet include produced."""
    env = app.env
    for node in doctree.findall(nodes.Element):
        if node.get("snippet"):
            continue
        if node.get("testnodetype"):  # sphinx.ext.doctest; hidden ones too.
            kind = f"doctest code ({node['testnodetype']})"
        elif isinstance(node, nodes.doctest_block):
            kind = "doctest block"
        elif isinstance(node, nodes.literal_block):
            kind = "code block"
        else:
            continue
        violation(env, node.line, inline(kind), "inline")


def init_env(app: Sphinx) -> None:
    env = app.env
    env.snippet_root = Path(os.path.abspath(Path(app.confdir, app.config.snippet_dir)))
    env.snippet_results = load_results(Path(app.confdir, app.config.snippet_results))
    for name in ("snippet_includes", "snippet_violations"):
        if not hasattr(env, name):
            setattr(env, name, {})
    refuse_doctest_directives(app)


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
    """Read again every page with a stored violation: its cause may be gone
    without any timestamp saying so (a file moved back with ``mv``)."""
    return sorted(set(env.snippet_violations) - removed)


def results_changed(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Write again the pages whose files' test results changed (footers are
    made when a page is written, so no page needs reading again)."""
    old = getattr(env, "snippet_results_seen", None)
    new = env.snippet_results
    env.snippet_results_seen = new
    if old == new:
        return []
    if old is None or new is None:
        names = None  # Every footer changes.
    else:
        names = {n for n in old.keys() | new.keys() if old.get(n) != new.get(n)}
    return sorted(
        docname
        for docname, shown in env.snippet_includes.items()
        if shown and (names is None or shown & names)
    )


def add_footers(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """One footer per file per page, after the file's last include on it."""
    env = app.env
    last: dict[str, nodes.Element] = {}
    for node in doctree.findall(nodes.Element):
        if "snippet_file" in node.attributes:
            last[node["snippet_file"]] = node
    for name, node in last.items():
        said, tests = status(env.snippet_results, name, env.snippet_root / name)
        if app.builder.format == "html":
            href = relative_uri(app.builder.get_target_uri(docname), f"snippets/{name}")
            footer = nodes.raw("", footer_html(name, href, said, tests), format="html")
        else:
            footer = nodes.paragraph(said, said, classes=["snippet-verified"])
        node.parent.insert(node.parent.index(node) + 1, footer)


def footer_html(name: str, href: str, said: str, tests: list[str]) -> str:
    link = (
        f'<a class="snippet-download" href="{html.escape(href)}" '
        f'download="{html.escape(Path(name).name)}">download</a>'
    )
    if not tests:
        text = f'<span class="snippet-status">{html.escape(said)}</span>'
        return f'<div class="snippet-verified">{link} {text}</div>\n'
    items = "".join(f"<li>{html.escape(readable(t))}</li>" for t in tests)
    return (
        f'<div class="snippet-verified">{link} <details>'
        f"<summary>{html.escape(said)}</summary><ul>{items}</ul></details></div>\n"
    )


def publish(app: Sphinx) -> None:
    """Copy snippets/ beside the pages, byte for byte, and zip it."""
    root = app.env.snippet_root
    out = Path(app.outdir, "snippets")
    shutil.rmtree(out, ignore_errors=True)
    archive = Path(app.outdir, "snippets.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in snippet_files(root):
            name = path.relative_to(root).as_posix()
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / name)
            member = zipfile.ZipInfo(f"snippets/{name}", ZIP_TIME)
            member.external_attr = 0o644 << 16
            member.compress_type = zipfile.ZIP_DEFLATED
            zipped.writestr(member, path.read_bytes())


def report(app: Sphinx, error: Exception | None) -> None:
    """Warn about every stored violation, every link in snippets/, and every
    file no page shows; then publish the snippets with an HTML build."""
    if error is not None:
        return
    env = app.env
    for docname in sorted(env.snippet_violations):
        for line, message, subtype in env.snippet_violations[docname]:
            logger.warning(
                message, location=(docname, line), type="snippet", subtype=subtype
            )
    root = env.snippet_root
    shown = set().union(*env.snippet_includes.values())
    for path in snippet_entries(root):
        if path.is_symlink():
            message = "a symbolic link: put the file itself in snippets/"
            subtype = "symlink"
        elif path.relative_to(root).as_posix() not in shown:
            message = "shown on no page: include it, or delete it"
            subtype = "orphan"
        else:
            continue
        logger.warning(message, location=f"{path}:1", type="snippet", subtype=subtype)
    if app.builder.format == "html":
        publish(app)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("snippet_dir", "snippets", "env", str)
    app.add_config_value("snippet_results", "build/verified.json", "", str)
    app.add_directive("literalinclude", SnippetInclude, override=True)
    app.connect("builder-inited", init_env)
    app.connect("env-purge-doc", purge_doc)
    app.connect("env-merge-info", merge_info)
    app.connect("env-get-outdated", outdated)
    app.connect("env-updated", results_changed)
    app.connect("doctree-read", check_code_blocks)
    app.connect("doctree-resolved", add_footers)
    app.connect("build-finished", report)
    return {
        "version": "2",
        "env_version": ENV_VERSION,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
