"""Blocking the event loop freezes every room; a thread keeps them going."""

from __future__ import annotations

import inspect
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import blocking
import pytest
from blocking_client import PING_INTERVAL, PING_TIMEOUT
from support import TIMEOUT, Server, commands
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

# Pings as the page's client sends them; the query takes 3 seconds.
PINGS = {"ping_interval": PING_INTERVAL, "ping_timeout": PING_TIMEOUT}


def start(serve) -> Server:
    return serve(commands("blocking.console")[0])


@contextmanager
def members(server: Server) -> Iterator[list[ClientConnection]]:
    """One member in each of two rooms, each checking the server with pings."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(connect(f"{server.ws_url}/chat/{room}", **PINGS))
            for room in ("main", "games")
        ]


def report(server: Server, kind: str) -> threading.Thread:
    """Ask for a report in a thread of its own, once the query has started."""

    def get() -> None:
        url = f"{server.http_url}/report/{kind}"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            assert json.loads(response.read()) == {"rows": 0}

    thread = threading.Thread(target=get)
    thread.start()
    server.wait_for(r"query started")
    return thread


def test_blocking_work_drops_the_members_of_every_room_with_1011(serve) -> None:
    server = start(serve)
    with members(server) as people:
        asking = report(server, "blocking")
        for person in people:
            with pytest.raises(ConnectionClosedError) as closed:
                person.recv(timeout=TIMEOUT)
            assert closed.value.sent is not None
            assert closed.value.sent.code == 1011  # The client's pings timed out.
            assert closed.value.sent.reason == "keepalive ping timeout"
        asking.join()


def test_work_in_a_thread_leaves_the_rooms_alone(serve) -> None:
    server = start(serve)
    with members(server) as people:
        asking = report(server, "threaded")
        asking.join()  # Three seconds of query, with a ping every half second.
        for person in people:
            person.send('{"text": "still here"}')
            assert json.loads(person.recv(timeout=TIMEOUT))["text"] == "still here"


def test_the_pages_figures_are_the_measured_ones() -> None:
    from measure_blocking import QUERY_SECONDS as MEASURED_WITH
    from measure_blocking import RESULTS, figures

    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    assert results["figures"] == figures(results)  # Not edited by hand.
    assert results["query_seconds"] == MEASURED_WITH


def test_the_websockets_client_pings_every_20_seconds_unless_told() -> None:
    parameters = inspect.signature(connect).parameters
    assert parameters["ping_interval"].default == 20
    assert parameters["ping_timeout"].default == 20


def test_the_query_takes_3_seconds_unless_set() -> None:
    assert blocking.QUERY_SECONDS == 3  # What the page says, and the tests use.
