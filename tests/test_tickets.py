"""One-time tickets for clients without cookies, in the URL or a subprotocol."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
import tickets
from support import TIMEOUT, Server, commands
from tickets_client import get_ticket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def start(serve, **env: str) -> Server:
    return serve(commands("tickets.console")[0], **env)


def ticket(server: Server) -> str:
    return get_ticket(server.http_url, "ann")  # As the page's client does.


def refused(url: str, **options) -> int:
    """The HTTP status with which the server refuses the handshake."""
    with pytest.raises(InvalidStatus) as error:
        with connect(url, **options):
            pass  # Never reached: the handshake is refused.
    return error.value.response.status_code


def test_a_ticket_admits_once_and_the_log_shows_it_used(serve) -> None:
    server = start(serve)
    first, second = ticket(server), ticket(server)  # Both valid at once.
    server.wait_for(r'"POST /ticket HTTP/1\.1" 200 OK$')  # No body, no name.
    for each in (first, second):
        url = f"{server.ws_url}/chat/main?ticket={each}"
        with connect(url) as ws:
            ws.send('{"text": "hi"}')
            heard = json.loads(ws.recv(timeout=TIMEOUT))
            assert heard == {"type": "message", "text": "hi", "from": "ann"}
        assert refused(url) == 403  # Replayed.
        path = re.escape(f"/chat/main?ticket={each}")
        server.wait_for(rf'"WebSocket {path}" \[accepted\]$')
        server.wait_for(rf'"WebSocket {path}" 403$')


def test_an_expired_ticket_is_refused(serve) -> None:
    server = start(serve, CHAT_TICKET_SECONDS="0")  # Expired once issued.
    ticket(server)  # Never used: the next issue forgets it.
    assert refused(f"{server.ws_url}/chat/main?ticket={ticket(server)}") == 403


@pytest.mark.parametrize("query", ["", "?ticket=", "?ticket=forged-by-someone"])
def test_a_missing_or_forged_ticket_is_refused(serve, query: str) -> None:
    server = start(serve)
    ticket(server)  # A real one exists; it does not help.
    assert refused(f"{server.ws_url}/chat/main{query}") == 403


@pytest.mark.parametrize("body", [b"ann", b'{"name": "Ann Smith"}', b"[1]"])
def test_a_ticket_needs_a_valid_name(serve, body: bytes) -> None:
    server = start(serve)
    request = urllib.request.Request(f"{server.http_url}/ticket", data=body)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=TIMEOUT)
    with error.value as response:
        assert response.code == 400
        assert json.loads(response.read()) == {
            "error": "a name of 1 to 30 of a-z, 0-9, _ and -, please"
        }


def test_a_ticket_in_a_subprotocol_gets_ours_echoed(serve) -> None:
    server = start(serve)
    url = f"{server.ws_url}/protocol/main"
    secret = ticket(server)
    with connect(url, subprotocols=["chat", f"ticket.{secret}"]) as ws:
        assert ws.subprotocol == "chat"
        ws.send('{"text": "hi"}')
        assert json.loads(ws.recv(timeout=TIMEOUT))["from"] == "ann"
    server.wait_for(r'"WebSocket /protocol/main" \[accepted\]$')
    assert secret not in server.output  # A header: not in the access log.
    assert refused(url, subprotocols=[f"ticket.{ticket(server)}"]) == 403
    assert refused(url, subprotocols=["chat"]) == 403  # No ticket at all.


def test_a_ticket_lasts_10_seconds_unless_set() -> None:
    assert tickets.TICKET_SECONDS == 10  # As the page says.


def test_python_accepts_a_server_that_picks_no_subprotocol(serve) -> None:
    """Unlike Chromium, which fails such a connection (see the Try it)."""
    server = start(serve)
    url = f"{server.ws_url}/chat/main?ticket={ticket(server)}"
    with connect(url, subprotocols=["chat"]) as ws:
        assert ws.subprotocol is None  # The server chose none, and it opened.
    assert refused(url) == 403  # The server accepted it: the ticket is spent.
