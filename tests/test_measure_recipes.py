"""The "Beyond the chat" pages' figures are the ones tests/measure_recipes.py wrote."""

from __future__ import annotations

import json

import pytest
from measure_recipes import HELD_WAIT, MEMBERS, POSTS, RESULTS, ROOT, ROUNDS, figures
from test_history import POOL_SIZE

DOCS = ROOT / "docs" / "source"


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_the_pages_figures_are_the_measured_ones(results) -> None:
    assert results["figures"] == figures(results)  # Not edited by hand.


def test_every_announcement_was_answered_and_the_silent_member_cut_off(
    results,
) -> None:
    announce = results["announce"]
    assert announce["posts"] == POSTS
    assert announce["silent_statuses"] == [200]
    assert announce["silent_member_cut_off"]  # "and is closed with 1008".


def test_every_figure_is_on_one_of_the_four_pages(results) -> None:
    pages = "".join(
        (DOCS / f"{page}.rst").read_text(encoding="utf-8")
        for page in (
            "talk-to-the-room",
            "refusals-that-say-why",
            "clients-without-cookies",
            "resources-per-message",
        )
    )
    assert [name for name in results["figures"] if f"|{name}|" not in pages] == []
    assert results["tickets"]["rounds"] == ROUNDS


def test_per_message_served_everyone_and_held_let_in_only_the_pool(results) -> None:
    history = results["history"]
    assert history["pool"] == POOL_SIZE
    assert history["members"] == MEMBERS
    assert history["per_message"] == history["per_message"] | {
        "served": MEMBERS,  # Each member heard every message.
        "waited": False,  # No task waited for a database connection.
    }
    assert history["held"] == {
        "tried": POOL_SIZE + 1,
        "admitted": POOL_SIZE,
        "wait_s": HELD_WAIT,
    }
