"""The figures the pages quote, from the results files that scripts write.

``make mutate``, ``make measure``, ``make bench-redis`` and
``make bench-resume`` write JSON files under docs/; conf.py turns them into
substitutions with these functions, so that no figure on a page is typed by
hand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

STALE = (
    ", measured on an earlier version of the snippets: run `make mutate`"
    " to measure them as they are"
)


def mutated(snippets: Path) -> dict[str, str]:
    """The sha256 of each file `make mutate` mutates, as the files are now."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(snippets.glob("*.py"))
        if not path.name.startswith("test_")
    }


def mutation_score(score: dict[str, Any] | None, snippets: Path) -> str:
    """The score as the testing page says it, and whether it is out of date."""
    if score is None:
        return "not measured yet"
    killed, total = score["killed"], score["total"]
    text = f"{killed} of {total} mutants killed ({killed / total:.0%})"
    return text if score.get("files") == mutated(snippets) else text + STALE


def redis_figures(bench: dict[str, Any]) -> dict[str, str]:
    """The scale-out page's figures, from docs/redis-bench.json."""
    figures = {
        f"redis_{where}_{cut}": f"{bench['latency'][where][cut + '_ms']:.2g} ms"
        for where in ("in_memory", "same_process", "cross_process")
        for cut in ("p50", "p99")
    }
    figures |= {
        f"redis_{part}_{key.removesuffix('_s')}": f"{bench[part][key]:.1f} s"
        for part in ("restart", "stall")
        for key in bench[part]
        if key.endswith("_s")
    }
    figures |= {f"redis_loss_{key}": str(value) for key, value in bench["loss"].items()}
    figures |= {f"redis_{key}": str(value) for key, value in bench["machine"].items()}
    figures["redis_rounds"] = str(bench["latency"]["rounds"])
    figures["redis_restarts"] = str(bench["restart"]["restarts"])
    return figures


def resume_figures(bench: dict[str, Any]) -> dict[str, str]:
    """The resume page's figures, from docs/resume-bench.json."""
    latency = bench["latency"]
    figures = {
        f"resume_{room}_{cut}": f"{latency[room][cut + '_ms']:.2g} ms"
        for room in ("pubsub", "resume")
        for cut in ("p50", "p99")
    }
    figures |= {
        "resume_extra_p50": f"{latency['extra']['p50_ms']:.2g} ms",
        "resume_rounds": str(latency["rounds"]),
        "resume_replay": f"{bench['replay']['median_s'] * 1000:.0f} ms",
        "resume_missed": f"{bench['replay']['missed']:,}",
        "resume_memory": f"{bench['memory']['bytes'] / 1024:.0f} KiB",
        "resume_text_chars": str(bench["memory"]["text_chars"]),
    }
    figures |= {f"resume_{key}": str(value) for key, value in bench["machine"].items()}
    return figures


def substitutions(figures: dict[str, str]) -> str:
    """reStructuredText substitution definitions, for rst_epilog."""
    return "".join(f".. |{name}| replace:: {text}\n" for name, text in figures.items())
