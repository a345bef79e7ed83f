"""The secure rooms over a real server, as a Python client sees them."""

import json
import urllib.request

import pytest
from support import Server, commands
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect


def login(server: Server, name: str = "ann") -> dict[str, str]:
    """Sign in over HTTP; return the Cookie header the session needs."""
    request = urllib.request.Request(
        f"{server.http_url}/login",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return {"Cookie": response.headers["Set-Cookie"].split(";")[0]}


def origin(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def refused_status(server: Server, **options) -> int:
    with pytest.raises(InvalidStatus) as refused:
        with connect(f"{server.ws_url}/chat/main", **options):
            pass  # Never reached: the handshake is refused.
    return refused.value.response.status_code


def test_handshake_refusals_are_http_403(serve) -> None:
    server = serve(commands("chatroom_secure.console")[0])
    cookie = login(server)
    ours, theirs = origin(server), "http://evil.example"
    assert refused_status(server, origin=ours) == 403  # No session.
    assert refused_status(server, origin=theirs, additional_headers=cookie) == 403
    with connect(
        f"{server.ws_url}/chat/main", origin=ours, additional_headers=cookie
    ) as ws:
        ws.send(json.dumps({"text": "hello"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "message", "text": "hello"}
    server.wait_for("INFO:chatroom:room 'main' closed")  # Its log is on, too.


def test_session_ending_while_connected_closes_with_1008(serve) -> None:
    server = serve(commands("chatroom_secure.console")[0], CHAT_SESSION_SECONDS="1")
    cookie = login(server)
    with connect(f"{server.ws_url}/chat/main", additional_headers=cookie) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)  # Nothing to hear until the session ends.
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


def test_allowed_origins_come_from_chat_origins(serve) -> None:
    ours = "https://chat.example"
    server = serve(commands("chatroom_secure.console")[0], CHAT_ORIGINS=ours)
    cookie = login(server)
    assert (
        refused_status(server, origin=origin(server), additional_headers=cookie) == 403
    )
    with connect(
        f"{server.ws_url}/chat/main", origin=ours, additional_headers=cookie
    ) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
