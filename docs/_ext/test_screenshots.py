"""The screenshots extension, on a small site built for real, with and without."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXT = Path(__file__).parent
CONF = f"""
import sys
sys.path.insert(0, {str(EXT)!r})
extensions = ["screenshots"]
"""
PAGE = """Page
====

.. screenshot:: two.png
   :alt: Two windows

   Two windows, *chatting*.
"""
# The smallest valid PNG: one transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def build(root: Path) -> str:
    """Build root's site (-W) and return its page's HTML."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-c",
            root,
            "-W",
            "-q",
            root / "docs/source",
            root / "build/html",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return (root / "build/html/index.html").read_text(encoding="utf-8")


def test_placeholder_first_then_the_screenshot_once_taken(tmp_path: Path) -> None:
    (tmp_path / "docs/source").mkdir(parents=True)
    (tmp_path / "conf.py").write_text(CONF)
    (tmp_path / "docs/source/index.rst").write_text(PAGE)

    before = build(tmp_path)
    assert "No screenshot yet (two.png): run make doctest, then build." in before
    assert "<img" not in before
    assert "Two windows, <em>chatting</em>." in before

    shots = tmp_path / "build/screenshots"
    shots.mkdir(parents=True)
    (shots / "two.png").write_bytes(PNG)
    after = build(tmp_path)  # Incremental: the new file alone makes it re-read.
    assert 'src="_images/two.png"' in after
    assert 'alt="Two windows"' in after
    assert "No screenshot yet" not in after
    assert (tmp_path / "build/html/_images/two.png").read_bytes() == PNG


TEXT_PAGE = """Page
====

.. test-output:: scrape.txt

   A scrape, *real*.
"""


def test_placeholder_first_then_the_text_a_test_wrote(tmp_path: Path) -> None:
    (tmp_path / "docs/source").mkdir(parents=True)
    (tmp_path / "conf.py").write_text(CONF)
    (tmp_path / "docs/source/index.rst").write_text(TEXT_PAGE)

    before = build(tmp_path)
    assert "No test output yet (scrape.txt): run make doctest, then build." in before
    assert "<pre" not in before
    assert "A scrape, <em>real</em>." in before

    shots = tmp_path / "build/screenshots"
    shots.mkdir(parents=True)
    (shots / "scrape.txt").write_text('members{room="main"} 2.0 <&>\n')
    after = build(tmp_path)  # Incremental: the new file alone makes it re-read.
    expected = (
        '<pre class="test-output">members{room=&quot;main&quot;} 2.0 &lt;&amp;&gt;'
    )
    assert expected in after
    assert "No test output yet" not in after
