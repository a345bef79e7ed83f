"""The snippet_contract extension, on small fixture sites built for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXT = Path(__file__).parent
CONF = f"""
import sys
sys.path.insert(0, {str(EXT)!r})
extensions = ["myst_parser", "sphinx.ext.doctest", "snippet_contract"]
"""
CODE = '"""A snippet."""\n\n\ndef greet() -> str:\n    return "hi"\n'
GOOD = (
    "Page\n====\n\n.. literalinclude:: ../../snippets/greet.py\n   :pyobject: greet\n"
)


def site(tmp_path: Path, page: str = GOOD, **extra: str) -> Path:
    """A site with conf.py at its root, one page and one snippet."""
    files = {
        "conf.py": CONF,
        "docs/source/index.rst": page,
        "snippets/greet.py": CODE,
        **extra,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def build(root: Path, *options: str) -> subprocess.CompletedProcess[str]:
    source, out = root / "docs/source", root / "build/html"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-c",
            root,
            "-W",
            "--keep-going",
            *options,
            source,
            out,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def fails_every_build(root: Path, *messages: str) -> None:
    """Fresh, no-op incremental and parallel builds all fail, saying messages."""
    for options in [(), (), ("-E", "-j", "2")]:
        result = build(root, *options)
        assert result.returncode != 0, (options, result.stderr)
        for message in messages:
            assert message in result.stderr, (options, result.stderr)


def test_included_snippet_builds_with_caption_and_status(tmp_path) -> None:
    root = site(tmp_path)
    for options in [(), (), ("-E", "-j", "2")]:
        result = build(root, *options)
        assert result.returncode == 0, result.stderr
    html = (root / "build/html/index.html").read_text(encoding="utf-8")
    assert "snippets/greet.py" in html
    assert "Not yet verified" in html


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (".. code-block:: python\n\n   x = 1\n", "index.rst:7: WARNING: inline code"),
        ("Look::\n\n   x = 1\n", "index.rst:9: WARNING: inline code"),
        (">>> 1 + 1\n2\n", "index.rst:7: WARNING: inline doctest block"),
        (".. doctest::\n\n   >>> 1 + 1\n   2\n", "index.rst:7: WARNING: inline code"),
    ],
    ids=["code-block", "literal", "doctest-block", "doctest-directive"],
)
def test_inline_code_fails_every_build(tmp_path, block: str, message: str) -> None:
    fails_every_build(site(tmp_path, GOOD + "\n" + block), message)


def test_myst_fenced_block_fails(tmp_path) -> None:
    include = "```{literalinclude} ../../snippets/greet.py\n```\n"
    page = f"# Page\n\n{include}\n```python\nx = 1\n```\n"
    root = site(tmp_path, GOOD, **{"docs/source/more.md": page})
    (root / "docs/source/index.rst").write_text(GOOD + "\n.. toctree::\n\n   more\n")
    fails_every_build(root, "more.md:6: WARNING: inline code block")


def test_orphan_snippet_fails(tmp_path) -> None:
    root = site(tmp_path, **{"snippets/forgotten.py": "x = 1\n"})
    fails_every_build(root, "snippets/forgotten.py:1: WARNING: shown on no page")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (":lines: 3-40", "points past the file's 5 lines"),
        (":lines: 9", "points past the file's 5 lines"),
        (":start-after: NOT THERE", "start-after pattern not found"),
        (":end-before: NOT THERE", "end-before pattern not found"),
        (":pyobject: missing", "Object named 'missing' not found"),
        (":emphasize-lines: 7", "points past the shown 5 lines"),
    ],
)
def test_include_that_selects_badly_fails(tmp_path, options: str, message: str) -> None:
    page = f"Page\n====\n\n.. literalinclude:: ../../snippets/greet.py\n   {options}\n"
    where = "index.rst:4: WARNING: ../../snippets/greet.py: "
    fails_every_build(site(tmp_path, page), where, message)


def test_include_outside_snippets_fails(tmp_path) -> None:
    page = GOOD + "\n.. literalinclude:: ../../conf.py\n"
    fails_every_build(site(tmp_path, page), "is not under snippets/")


def test_verified_line_follows_results_even_on_a_no_op_build(tmp_path) -> None:
    root = site(tmp_path)
    assert build(root).returncode == 0
    results = root / "build/verified.json"
    results.write_text(
        json.dumps({"greet.py": ["tests/test_a.py::test_" + c for c in "abcd"]})
    )
    assert build(root).returncode == 0
    html = (root / "build/html/index.html").read_text(encoding="utf-8")
    assert "Verified by tests/test_a.py::test_a, tests/test_a.py::test_b, " in html
    assert "tests/test_a.py::test_c and 1 more" in html
    results.write_text(json.dumps({}))
    assert build(root).returncode == 0
    html = (root / "build/html/index.html").read_text(encoding="utf-8")
    assert "Not verified: no test exercised this file" in html
