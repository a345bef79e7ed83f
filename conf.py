"""Sphinx configuration: the docs live in docs/source, the code in snippets/."""

import json
import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "docs" / "_ext"))
sys.path.insert(0, str(Path(__file__).parent / "docs" / "bench"))

from figures import mutation_score, redis_figures, resume_figures, substitutions

project = "Responder WebSockets"
author = "The Responder WebSockets tutorial authors"
copyright = "2026, " + author

extensions = [
    "myst_parser",
    "sphinx_copybutton",
    "snippet_contract",  # docs/_ext: no inline code, no orphan, no empty include
    "screenshots",  # docs/_ext: the browser tests' screenshots, or a placeholder
    "fanout_report",  # docs/bench: tables and plot from `make bench`'s results
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns: list[str] = []

html_theme = "furo"
html_title = "Responder WebSockets"

# The versions the pages were built (and, by `make doctest`, verified) with.
VERSIONS = {
    name: metadata.version(name) for name in ("responder", "starlette", "uvicorn")
}
rst_epilog = "".join(
    f".. |{name}_version| replace:: {number}\n" for name, number in VERSIONS.items()
)
myst_enable_extensions = ["substitution"]
myst_substitutions = {f"{name}_version": n for name, n in VERSIONS.items()}

# Figures from the committed results of `make mutate`, `make bench-redis` and
# `make measure` (docs/*.json): never typed by hand.
DOCS = Path(__file__).parent / "docs"
MUTATION = DOCS / "mutation.json"
myst_substitutions["mutation_score"] = mutation_score(
    json.loads(MUTATION.read_text()) if MUTATION.exists() else None,
    Path(__file__).parent / "snippets",
)
rst_epilog += substitutions(
    redis_figures(json.loads((DOCS / "redis-bench.json").read_text()))
)
for measured in ("resilient.json", "blocking.json", "deflate.json", "recipes.json"):
    rst_epilog += substitutions(json.loads((DOCS / measured).read_text())["figures"])
rst_epilog += substitutions(  # `make bench-resume`, for the resume page.
    resume_figures(json.loads((DOCS / "resume-bench.json").read_text()))
)

# Copy only what the reader types: the command after "$ " in a console
# session, the code after ">>> " or "... " in a Python one; never the output.
copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

html_static_path = ["docs/source/_static"]
html_css_files = ["snippets.css"]
