"""The snippet_contract extension, on small fixture sites built in-process.

Each site has its pages in docs/source (with conf.py there), its snippets in
snippets/ and its output in build/, as the project does. Builds run with
Sphinx's own test application; the parallel builds fork real worker processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import warnings
import zipfile
from pathlib import Path

import pytest
import snippet_contract
from sphinx.testing.util import SphinxTestApp

EXT = Path(__file__).parent
ROOT = EXT.parents[1]
CONF = """
extensions = ["myst_parser", "snippet_contract"{more}]
snippet_dir = "../../snippets"
snippet_results = "../../build/verified.json"
"""
CODE = '"""A snippet."""\n\n\ndef greet() -> str:\n    return "hi"\n'
GOOD = (
    "Page\n====\n\n.. literalinclude:: ../../snippets/greet.py\n   :pyobject: greet\n"
)
ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # Colours.
WARNING = re.compile(r"^(\S+): WARNING: (.*?)(?: \[snippet\.(\w+)\])?$", re.MULTILINE)


def site(tmp_path: Path, page: str = GOOD, doctest: bool = False, **extra) -> Path:
    """A site with one page and one snippet; extra maps paths to contents."""
    more = ', "sphinx.ext.doctest"' if doctest else ""
    files = {
        "docs/source/conf.py": CONF.format(more=more),
        "docs/source/index.rst": page,
        "snippets/greet.py": CODE,
        **extra,
    }
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return tmp_path


class Built:
    """What one build said: its status code and warnings as (where, text, subtype)."""

    def __init__(self, app: SphinxTestApp) -> None:
        self.code = app.statuscode
        self.status = ESCAPE.sub("", app.status.getvalue())
        self.text = ESCAPE.sub("", app.warning.getvalue())
        self.warnings = WARNING.findall(self.text)

    def says(self, text: str) -> list[tuple[str, str, str]]:
        return [w for w in self.warnings if text in w[1]]


def build(root: Path, parallel: int = 0, fresh: bool = False, **conf) -> Built:
    """Build root's site like `make html` (-W -n), incrementally unless fresh."""
    app = SphinxTestApp(
        "html",
        srcdir=root / "docs/source",
        builddir=root / "build",
        freshenv=fresh,
        parallel=parallel,
        warningiserror=True,
        confoverrides={"nitpicky": True, **conf},
    )
    try:
        with warnings.catch_warnings():
            # Sphinx forks its parallel workers; from Python 3.12 a fork while
            # another thread lives (the browser's, say) warns. The workers only
            # read pages; the build's own result is what the tests check.
            warnings.filterwarnings("ignore", "This process", DeprecationWarning)
            app.build()
    finally:
        app.cleanup()
    return Built(app)


def html(root: Path, page: str = "index") -> str:
    return (root / f"build/html/{page}.html").read_text(encoding="utf-8")


def shown(page: str) -> str:
    """The page with test names' separators as ">"."""
    return page.replace(snippet_contract.SEPARATOR, " > ")


def every_build(root: Path) -> list[Built]:
    """A fresh build, a no-op incremental one, and a fresh parallel one."""
    return [build(root), build(root), build(root, parallel=2, fresh=True)]


def fails_every_build(root: Path, *messages: str) -> list[Built]:
    """Every kind of build fails, saying each message once."""
    builds = every_build(root)
    for built in builds:
        assert built.code != 0, built.text
        for message in messages:
            assert len(built.says(message)) == 1, (message, built.text)
    return builds


def test_included_snippet_builds_with_caption_and_footer(tmp_path) -> None:
    root = site(tmp_path)
    for built in every_build(root):
        assert built.code == 0, built.text
        assert built.text == ""
    page = html(root)
    assert '<span class="caption-text">snippets/greet.py</span>' in page
    assert "Not yet verified" in page
    assert 'href="snippets/greet.py" download="greet.py"' in page


INLINE = [
    (".. code-block:: python\n\n   x = 1\n", 7, "inline code block"),
    ("Look::\n\n   x = 1\n", 9, "inline code block"),
    (">>> 1 + 1\n2\n", 7, "inline doctest block"),
    (".. doctest::\n\n   >>> 1 + 1\n   2\n", 7, "inline"),
    (".. testsetup::\n\n   x = 1\n", 7, "inline"),
    (".. testcode::\n   :hide:\n\n   print(1)\n", 7, "inline"),
    (".. testcleanup::\n\n   x = 0\n", 7, "inline"),
]


@pytest.mark.parametrize("doctest", [True, False], ids=["ext.doctest", "alone"])
@pytest.mark.parametrize(
    ("block", "line", "message"),
    INLINE,
    ids=["code-block", "literal", "block", "doctest", "setup", "hidden", "cleanup"],
)
def test_inline_code_fails_every_build(
    tmp_path, block: str, line: int, message: str, doctest: bool
) -> None:
    """Shown or hidden, with or without sphinx.ext.doctest: one warning."""
    root = site(tmp_path, GOOD + "\n" + block, doctest=doctest)
    for built in fails_every_build(root, message):
        assert built.warnings == [
            (
                f"{root}/docs/source/index.rst:{line}",
                built.says(message)[0][1],
                "inline",
            )
        ]


def test_myst_fenced_block_fails(tmp_path) -> None:
    include = "```{literalinclude} ../../snippets/greet.py\n```\n"
    page = f"# Page\n\n{include}\n```python\nx = 1\n```\n"
    root = site(tmp_path, GOOD + "\n.. toctree::\n\n   more\n")
    (root / "docs/source/more.md").write_text(page)
    for built in fails_every_build(root, "inline code block"):
        assert built.warnings[0][0] == f"{root}/docs/source/more.md:6"


def test_orphan_snippet_fails_at_its_absolute_path(tmp_path) -> None:
    root = site(tmp_path, **{"snippets/forgotten.py": "x = 1\n"})
    for built in fails_every_build(root, "shown on no page"):
        assert built.warnings == [
            (f"{root}/snippets/forgotten.py:1", built.warnings[0][1], "orphan")
        ]


def test_snippets_outside_the_project_do_not_crash(tmp_path) -> None:
    root = site(tmp_path / "site", "Page\n====\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "lost.py").write_text("x = 1\n")
    built = build(root, snippet_dir=str(elsewhere))
    assert built.warnings == [
        (f"{elsewhere}/lost.py:1", built.warnings[0][1], "orphan")
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (":lines: 3-40", "line number spec is out of range(1-5): '3-40'"),
        (":lines: 9", "no lines pulled from include file"),
        (":start-after: NOT THERE", "start-after pattern not found"),
        (":end-before: NOT THERE", "end-before pattern not found"),
        (":pyobject: missing", "Object named 'missing' not found"),
        (":emphasize-lines: 7", "line number spec is out of range(1-5): '7'"),
        (":lines: 2", "the include selects no lines"),
    ],
)
def test_include_that_selects_badly_fails(tmp_path, options: str, message: str) -> None:
    page = f"Page\n====\n\n.. literalinclude:: ../../snippets/greet.py\n   {options}\n"
    for built in fails_every_build(site(tmp_path, page), message):
        assert built.warnings == [
            (f"{tmp_path}/docs/source/index.rst:4", built.warnings[0][1], "include")
        ]
        assert built.warnings[0][1].startswith("../../snippets/greet.py: ")


def test_include_outside_snippets_fails_once(tmp_path) -> None:
    page = GOOD + "\n.. literalinclude:: ../../notes.txt\n"
    root = site(tmp_path, page, **{"notes.txt": "x\n"})
    for built in fails_every_build(root, "not under snippets/"):
        assert len(built.warnings) == 1
        assert built.warnings[0][2] == "path"


@pytest.mark.parametrize("target", ["/snippets/greet.py", "/greet.py"])
def test_source_root_path_gets_one_warning_saying_what_to_write(
    tmp_path, target: str
) -> None:
    page = f"Page\n====\n\n.. literalinclude:: {target}\n"
    for built in fails_every_build(
        site(tmp_path, page), "write ../../snippets/greet.py"
    ):
        assert len(built.warnings) == 1, built.text
        assert built.warnings[0][2] == "path"


def test_diff_is_refused_with_one_warning(tmp_path) -> None:
    page = GOOD + "\n.. literalinclude:: ../../snippets/greet.py\n   :diff: old.py\n"
    root = site(tmp_path, page)
    for built in fails_every_build(root, ":diff: is not supported"):
        assert len(built.warnings) == 1, built.text
    assert str(root) not in html(root)


def test_symlink_in_snippets_is_refused_once(tmp_path) -> None:
    page = "Page\n====\n\n.. literalinclude:: ../../snippets/link.py\n"
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    root = site(tmp_path / "site", page)
    (root / "snippets/link.py").symlink_to(root / "snippets/greet.py")
    (root / "snippets/away.py").symlink_to(outside)
    (root / "snippets/folder").symlink_to(tmp_path)
    page += "\n.. literalinclude:: ../../snippets/away.py\n"
    (root / "docs/source/index.rst").write_text(page + GOOD.split("====\n")[1])
    for built in every_build(root):
        assert built.code != 0
        assert sorted((w[0], w[2]) for w in built.warnings) == [
            (f"{root}/snippets/away.py:1", "symlink"),
            (f"{root}/snippets/folder:1", "symlink"),
            (f"{root}/snippets/link.py:1", "symlink"),
        ], built.text
    assert '<span class="caption-text">snippets/link.py</span>' in html(root)


def test_non_utf8_files_are_read_as_the_directive_reads_them(tmp_path) -> None:
    latin = "Page\n====\n\n.. literalinclude:: ../../snippets/latin.txt\n"
    latin += "   :encoding: latin-1\n   :lines: 1\n\n" + GOOD.split("====\n")[1]
    root = site(
        tmp_path, latin, **{"snippets/latin.txt": "caf\xe9\n".encode("latin-1")}
    )
    built = build(root)
    assert built.code == 0, built.text
    assert "café" in html(root)

    binary = (
        "Page\n====\n\n.. literalinclude:: ../../snippets/latin.txt\n   :lines: 1\n"
    )
    (root / "docs/source/index.rst").write_text(binary + GOOD.split("====\n")[1])
    fails_every_build(root, "seems to be wrong, try giving an :encoding: option")


def test_a_file_moved_back_with_its_old_time_builds_again(tmp_path) -> None:
    root = site(tmp_path)
    snippet, away = root / "snippets/greet.py", root / "greet.py"
    assert build(root).code == 0
    old = snippet.stat().st_mtime_ns - 10**9
    os.utime(snippet, ns=(old, old))
    snippet.rename(away)
    assert build(root).says("not found or reading it failed")
    away.rename(snippet)
    for built in [build(root), build(root)]:
        assert built.code == 0, built.text
        assert built.text == ""


def test_each_problem_is_printed_once_at_one_location(tmp_path) -> None:
    page = GOOD + "\n.. literalinclude:: ../../snippets/gone.py\n\nLook::\n\n   x\n"
    root = site(tmp_path, page, **{"snippets/forgotten.py": "x = 1\n"})
    for built in every_build(root):
        assert len(built.text.splitlines()) == 3, built.text
        assert [w[2] for w in built.warnings] == ["include", "inline", "orphan"]
        assert not any("WARNING" in w[1] for w in built.warnings)


def test_warnings_have_subtypes_that_can_be_suppressed(tmp_path) -> None:
    page = GOOD + "\nLook::\n\n   x\n"
    root = site(tmp_path, page, **{"snippets/forgotten.py": "x = 1\n"})
    built = build(root, suppress_warnings=["snippet.orphan"])
    assert [w[2] for w in built.warnings] == ["inline"]
    built = build(root, suppress_warnings=["snippet.inline", "snippet.orphan"])
    assert built.code == 0, built.text


def test_env_version_is_declared(tmp_path) -> None:
    """Data stored on env must be dropped when its shape changes."""
    app = SphinxTestApp("html", srcdir=site(tmp_path) / "docs/source")
    try:
        metadata = app.extensions["snippet_contract"].metadata
    finally:
        app.cleanup()
    assert metadata["env_version"] == snippet_contract.ENV_VERSION
    assert (
        app.registry.get_envversion(app)["snippet_contract"] == metadata["env_version"]
    )


def record(root: Path, **tests: list[str]) -> None:
    """Write verified.json as the test suite would, from the files as they are."""
    results = {
        name: {
            "sha256": hashlib.sha256(
                (root / "snippets" / name).read_bytes()
            ).hexdigest(),
            "tests": ids,
        }
        for name, ids in tests.items()
    }
    (root / "build").mkdir(exist_ok=True)
    (root / "build/verified.json").write_text(json.dumps(results))


def test_footer_is_keyed_by_content(tmp_path) -> None:
    root = site(tmp_path)
    assert build(root).code == 0
    ids = [f"tests/test_a.py::test_{c}" for c in "ab"] + ["snippets/t.py::T::test[%C3]"]
    record(root, **{"greet.py": ids})
    assert build(root).code == 0  # A no-op build follows the results.
    page = html(root)
    assert "<summary>Verified by 3 tests</summary>" in page
    assert "<li>test_a.py > test_a</li><li>test_a.py > test_b</li>" in shown(page)
    assert "<li>snippets/t.py > T > test[%C3]</li>" in shown(page)

    snippet = root / "snippets/greet.py"
    snippet.write_text(CODE.replace("hi", "hello"))
    assert build(root).code == 0
    assert "Changed since it was last verified" in html(root)
    assert "Verified by" not in html(root)

    record(root, **{"greet.py": []})
    assert build(root).code == 0
    assert "Not verified: no test exercised this file" in html(root)

    (root / "build/verified.json").write_text(json.dumps({"greet.py": ids}))
    assert build(root).code == 0  # The old format, without hashes: no record.
    assert "Not yet verified" in html(root)


def test_one_footer_per_file_per_page_after_its_last_include(tmp_path) -> None:
    other = "\n.. literalinclude:: ../../snippets/other.py\n"
    page = GOOD + other + GOOD.split("====\n")[1] + "\nEnd.\n" + GOOD.split("====\n")[1]
    root = site(tmp_path, page, **{"snippets/other.py": "y = 2\n"})
    record(root, **{"greet.py": ["tests/test_a.py::test_a"]})
    assert build(root).code == 0
    page = html(root)
    assert page.count('class="snippet-verified"') == 2
    assert page.count("Verified by 1 test<") == 1
    footers = [m.start() for m in re.finditer('class="snippet-verified"', page)]
    blocks = [m.start() for m in re.finditer('class="highlight"', page)]
    assert footers[0] > blocks[1] and footers[0] < blocks[2]  # other.py's
    assert footers[1] > blocks[3] and page.index("End.") < blocks[3]  # greet.py's


def test_changed_results_rewrite_only_the_pages_that_show_the_file(tmp_path) -> None:
    second = ":orphan:\n\nTwo\n===\n\n.. literalinclude:: ../../snippets/other.py\n"
    root = site(
        tmp_path,
        GOOD,
        **{"snippets/other.py": "y = 2\n", "docs/source/two.rst": second},
    )
    record(root, **{"greet.py": ["tests/a::b"], "other.py": ["tests/a::b"]})
    assert build(root).code == 0
    record(root, **{"greet.py": ["tests/a::b"], "other.py": ["tests/a::c"]})
    built = build(root)
    assert built.code == 0, built.text
    assert re.findall(r"writing output\.\.\. \[\s*\d+%\] (\S+)", built.status) == [
        "two"
    ]
    assert "reading sources... [" not in built.status  # Nothing read again.
    assert "a > c" in shown(html(root, "two"))


def test_downloads_are_the_snippets_byte_for_byte(tmp_path) -> None:
    page = GOOD + "\n.. literalinclude:: ../../snippets/static/index.html\n"
    page += "\n.. literalinclude:: ../../snippets/blob.bin\n   :encoding: latin-1\n"
    root = site(
        tmp_path,
        page,
        **{
            "snippets/static/index.html": "<p>hi</p>\r\n",
            "snippets/blob.bin": bytes(range(256)),
            "snippets/.hidden": "secret\n",
            "snippets/__pycache__/greet.pyc": b"\0",
        },
    )
    built = build(root)
    assert built.code == 0, built.text
    names = ["blob.bin", "greet.py", "static/index.html"]
    out = root / "build/html"
    for name in names:
        assert (out / "snippets" / name).read_bytes() == (
            root / "snippets" / name
        ).read_bytes()
    assert (
        sorted(
            p.relative_to(out / "snippets").as_posix()
            for p in (out / "snippets").rglob("*")
            if p.is_file()
        )
        == names
    )
    with zipfile.ZipFile(out / "snippets.zip") as zipped:
        assert zipped.namelist() == [f"snippets/{n}" for n in names]
        for name in names:
            assert (
                zipped.read(f"snippets/{name}")
                == (root / "snippets" / name).read_bytes()
            )
    hrefs = re.findall(r'class="snippet-download" href="([^"]+)"', html(root))
    assert sorted(hrefs) == [f"snippets/{n}" for n in names]

    (root / "snippets/static/index.html").unlink()  # Gone from the downloads too.
    (root / "docs/source/index.rst").write_text(
        page.split("\n.. literalinclude:: ../../snippets/static")[0]
        + "\n.. literalinclude:: ../../snippets/blob.bin\n   :encoding: latin-1\n"
    )
    assert build(root).code == 0
    assert not (out / "snippets/static/index.html").exists()


def test_copy_button_copies_only_the_code_of_a_python_session(tmp_path, browser):
    """The project's own conf.py, in Chromium: what the copy button copies."""
    session = ">>> x = [\n...     1]\n>>> x\n[1]\n"
    console = "$ python -c 'print(1)'\n1\n"
    page = "Page\n====\n\n.. literalinclude:: ../../snippets/s.pycon\n"
    page += "\n.. literalinclude:: ../../snippets/s.console\n   :language: console\n"
    root = site(
        tmp_path, page, **{"snippets/s.pycon": session, "snippets/s.console": console}
    )
    (root / "snippets/greet.py").unlink()
    conf = root / "docs/source/conf.py"
    conf.write_text(
        f"__file__ = {str(ROOT / 'conf.py')!r}\n"
        "import pathlib\n"
        "exec(compile(pathlib.Path(__file__).read_text(), __file__, 'exec'))\n"
        f"html_static_path = [{str(ROOT / 'docs/source/_static')!r}]\n"
        + CONF.format(more="").split("\n", 2)[2]
    )
    built = build(root)
    assert built.code == 0, built.text
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        tab = context.new_page()
        tab.goto((root / "build/html/index.html").as_uri())
        copied = []
        for button in tab.locator(".copybtn").all():
            button.click()
            copied.append(tab.evaluate("navigator.clipboard.readText()"))
    finally:
        context.close()
    assert copied == ["x = [\n    1]\nx", "python -c 'print(1)'"]


def test_livehtml_takes_port_host_and_the_html_options() -> None:
    """`make livehtml` passes overrides through, and builds as `make html` does."""

    def dry_run(target: str, *overrides: str) -> list[str]:
        made = subprocess.run(
            ["make", "--dry-run", "--always-make", target, *overrides],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
            capture_output=True,
            text=True,
            check=True,
        )
        (line,) = [line for line in made.stdout.splitlines() if "bin/sphinx-" in line]
        return shlex.split(line)

    html_argv = dry_run("html")
    live = dry_run("livehtml")
    for option in ("-W", "-n", "-c", "."):
        assert option in html_argv and option in live
    assert "--keep-going" not in html_argv + live
    live = dry_run("livehtml", "PORT=8123", "HOST=0.0.0.0", "SPHINXOPTS=-W -n -j 2")
    assert live[live.index("--port") + 1] == "8123"
    assert live[live.index("--host") + 1] == "0.0.0.0"
    assert live[live.index("-j") + 1] == "2"


def test_results_written_by_the_suite_key_each_file_by_its_content(tmp_path) -> None:
    """tests/support.py writes what the extension reads: the hash taken before
    the tests ran, so an edit during the run shows as a change."""
    from support import digests, write_results

    root = site(tmp_path, **{"snippets/static/page.html": "<p>1</p>\n"})
    seen = digests(root / "snippets")
    (root / "snippets/static/page.html").write_text("<p>2</p>\n")  # Mid-run.
    used = {"greet.py": {"tests/t.py::b", "tests/t.py::a"}, "static/page.html": {"x"}}
    write_results(root / "build/verified.json", used | {"gone.py": {"y"}}, seen)
    results = snippet_contract.load_results(root / "build/verified.json")
    assert results == {
        "greet.py": {
            "sha256": seen["greet.py"],
            "tests": ["tests/t.py::a", "tests/t.py::b"],
        },
        "static/page.html": {"sha256": seen["static/page.html"], "tests": ["x"]},
    }
    said = {
        name: snippet_contract.status(results, name, root / "snippets" / name)[0]
        for name in results
    }
    assert said == {
        "greet.py": "Verified by 2 tests",
        "static/page.html": "Changed since it was last verified: "
        "run make doctest again.",
    }
