"""figures.py: what the pages say of the committed results files."""

from __future__ import annotations

import json
from pathlib import Path

import figures

DOCS = Path(__file__).parents[1]


def test_a_score_of_the_files_as_they_are_is_said_plainly(tmp_path: Path) -> None:
    (tmp_path / "room.py").write_text("x = 1\n")
    (tmp_path / "test_room.py").write_text("")  # Tests are not mutated.
    score = {"killed": 9, "total": 10, "files": figures.mutated(tmp_path)}
    said = figures.mutation_score(score, tmp_path)
    assert said == "9 of 10 mutants killed (90%)"
    (tmp_path / "room.py").write_text("x = 2\n")  # Edited since.
    assert figures.mutation_score(score, tmp_path) == said + figures.STALE
    del score["files"]  # Written before scores recorded what they measured.
    assert figures.mutation_score(score, tmp_path) == said + figures.STALE
    assert figures.mutation_score(None, tmp_path) == "not measured yet"


def test_the_redis_figures_are_the_committed_ones_rounded() -> None:
    bench = json.loads((DOCS / "redis-bench.json").read_text())
    said = figures.redis_figures(bench)
    p50 = bench["latency"]["cross_process"]["p50_ms"]
    assert said["redis_cross_process_p50"] == f"{p50:.2g} ms"
    assert said["redis_restart_flowing"] == f"{bench['restart']['flowing_s']:.1f} s"
    assert said["redis_restarts"] == str(bench["restart"]["restarts"])
    text = figures.substitutions(said)
    assert f".. |redis_cross_process_p50| replace:: {p50:.2g} ms\n" in text


def test_the_resume_figures_are_the_committed_ones_rounded() -> None:
    bench = json.loads((DOCS / "resume-bench.json").read_text())
    said = figures.resume_figures(bench)
    assert said["resume_replay"] == f"{bench['replay']['median_s'] * 1000:.0f} ms"
    assert said["resume_memory"] == f"{bench['memory']['bytes'] / 1024:.0f} KiB"
    extra = bench["latency"]["extra"]["p50_ms"]
    assert said["resume_extra_p50"] == f"{extra:.2g} ms"
    assert said["resume_missed"] == "1,000"
