"""`make mutate`: change the Python snippets in small ways, and run their tests.

Each mutant flips one string, number, comparison or boolean operator, or
removes one statement. A mutant the tests still pass is a survivor: a change
to what the reader sees or runs that no test noticed. Mutants are written in a
copy of the repository, never in the working tree.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCORE = ROOT / "docs" / "mutation.json"  # Shown on the testing page.
WORKERS = os.cpu_count() or 1
IGNORED = shutil.ignore_patterns(".venv", ".git", "build", ".coverage*", "__pycache__")
FLIPS: dict[type, type] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
}


def is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return isinstance(parent, ast.Expr) and isinstance(node, ast.Constant)


def parents_of(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    return {
        child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
    }


def mutations(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """Each place to mutate, with what the mutation does."""
    parents = parents_of(tree)
    for node in ast.walk(tree):
        parent = parents.get(node)
        if isinstance(node, ast.Constant) and not is_docstring(node, parent):
            if isinstance(node.value, str):
                yield node, f"string {node.value!r} changed"
            elif isinstance(node.value, int) and not isinstance(node.value, bool):
                yield node, f"number {node.value} + 1"
        elif (
            isinstance(node, ast.Compare | ast.BoolOp)
            and type(node.op if isinstance(node, ast.BoolOp) else node.ops[0]) in FLIPS
        ):
            yield node, "operator flipped"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "`not` removed"
        elif (
            isinstance(node, ast.stmt)
            and not isinstance(
                node,
                ast.Import
                | ast.ImportFrom
                | ast.FunctionDef
                | ast.AsyncFunctionDef
                | ast.ClassDef
                | ast.Pass,
            )
            and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            )
        ):
            yield node, "statement removed"


def mutate(tree: ast.Module, index: int) -> str:
    """The source of tree with its index-th mutation applied."""
    tree = copy.deepcopy(tree)
    node, _ = list(mutations(tree))[index]
    if isinstance(node, ast.Constant):
        node.value = (
            f"XX{node.value}XX" if isinstance(node.value, str) else node.value + 1
        )
    elif isinstance(node, ast.Compare):
        node.ops[0] = FLIPS[type(node.ops[0])]()
    elif isinstance(node, ast.BoolOp):
        node.op = FLIPS[type(node.op)]()
    elif isinstance(node, ast.UnaryOp):
        replace(parents_of(tree)[node], node, node.operand)
    else:
        replace(parents_of(tree)[node], node, ast.Pass())
    return ast.unparse(ast.fix_missing_locations(tree))


def replace(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
        elif isinstance(value, list) and old in value:
            value[value.index(old)] = new


def run_one(copy_root: Path, path: Path, mutant: str, tests: list[str]) -> bool:
    """Whether the tests notice mutant in place of path: True if they fail."""
    target = copy_root / "snippets" / path.name
    target.write_text(mutant)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-xq", "-p", "no:cacheprovider", *tests],
            cwd=copy_root,
            capture_output=True,
            timeout=60,  # A mutant that hangs a test counts as noticed.
        )
        return run.returncode != 0
    except subprocess.TimeoutExpired:
        return True
    finally:
        target.write_text(path.read_text())


def main(argv: list[str]) -> int:
    """All mutants. With --survivors, only the last run's survivors again; with
    --files a.py b.py, all mutants of those files, keeping the last run's
    results for the others."""
    results = ROOT / "build" / "verified.json"
    if not results.exists():
        print("run `make doctest` first: it records which tests verify each snippet")
        return 2
    verified = json.loads(results.read_text())
    snippets = sorted(
        p for p in (ROOT / "snippets").glob("*.py") if not p.name.startswith("test_")
    )
    jobs = []  # (path, line, what, mutant source)
    for path in snippets:
        tree = ast.parse(path.read_text())
        for index, (node, what) in enumerate(list(mutations(tree))):
            jobs.append((path, node.lineno, what, mutate(tree, index)))
    previous = json.loads(SCORE.read_text()) if argv else None
    kept: list[str] = []  # Survivors of the last run that are not re-run.
    if argv[:1] == ["--survivors"]:  # After adding tests: the killed stay killed.
        jobs = [job for job in jobs if describe(job) in previous["survivors"]]
    elif argv[:1] == ["--files"]:
        jobs = [job for job in jobs if job[0].name in argv[1:]]
        again = tuple(f"snippets/{name}:" for name in argv[1:])
        kept = [s for s in previous["survivors"] if not s.startswith(again)]
    with tempfile.TemporaryDirectory() as tmp:
        copies: queue.Queue[Path] = queue.Queue()
        for n in range(WORKERS):  # One copy of the repository per worker.
            copy_root = Path(tmp) / f"repo{n}"
            shutil.copytree(ROOT, copy_root, ignore=IGNORED)
            copies.put(copy_root)

        def work(job: tuple[Path, int, str, str]) -> bool:
            path, _, _, mutant = job
            copy_root = copies.get()
            try:
                noticed = run_one(
                    copy_root,
                    path,
                    mutant,
                    verified.get(path.name, {}).get("tests", []),
                )
            finally:
                copies.put(copy_root)
            print("." if noticed else "S", end="", flush=True)
            return noticed

        with ThreadPoolExecutor(WORKERS) as pool:
            killed = list(pool.map(work, jobs))
    print()
    survivors = kept + [
        describe(job) for job, dead in zip(jobs, killed, strict=True) if not dead
    ]
    for survivor in survivors:
        print("survived:", survivor)
    total, dead = len(jobs), sum(killed)
    if previous:
        total, dead = previous["total"], previous["total"] - len(survivors)
    print(f"{dead} of {total} mutants killed ({dead / total:.0%})")
    # The content measured, so that the site can tell when the score is stale.
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in snippets}
    score = {"killed": dead, "total": total, "survivors": survivors, "files": files}
    SCORE.write_text(json.dumps(score, indent=1) + "\n")
    return 0


def describe(job: tuple[Path, int, str, str]) -> str:
    path, line, what, _ = job
    return f"snippets/{path.name}:{line}: {what}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
