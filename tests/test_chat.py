"""Section 4: the chat room, in-process and over real sockets."""

import runpy
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import chat
import pytest
import responder
from anyio.from_thread import start_blocking_portal
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from support import SNIPPETS, commands, snippet
from uvicorn.protocols.utils import ClientDisconnected
from websockets.sync.client import ClientConnection, connect


@pytest.fixture
def client() -> Iterator[TestClient]:
    """One portal, so one event loop, for all the sessions of a test."""
    with TestClient(chat.api) as client:
        yield client


def test_every_client_receives_every_message(client) -> None:
    with client.websocket_connect("/chat") as alice:
        alice.send_text("alice here")
        assert alice.receive_text() == "alice here"  # Alice is in the room.
        with client.websocket_connect("/chat") as bob:
            bob.send_text("hi alice")
            assert bob.receive_text() == "hi alice"
            assert alice.receive_text() == "hi alice"
        assert len(chat.clients) == 1  # Bob's handler removed him on leaving.
    assert chat.clients == set()


class GoneClient:
    """Stands in for a peer whose connection died before the broadcast."""

    async def send_text(self, text: str) -> None:
        raise WebSocketDisconnect(code=1006)


def test_a_gone_client_is_dropped_and_the_rest_still_served(client) -> None:
    gone = GoneClient()
    with client.websocket_connect("/chat") as alice:
        chat.clients.add(gone)  # type: ignore[arg-type]
        alice.send_text("anyone there?")
        assert alice.receive_text() == "anyone there?"
        assert gone not in chat.clients


def test_page_is_found_from_any_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    api = runpy.run_path(str(SNIPPETS / "chat.py"))["api"]
    response = TestClient(api).get("/static/index.html")
    assert response.status_code == 200
    assert response.text == snippet("static/index.html")


def join(room: ExitStack, url: str, name: str) -> ClientConnection:
    """Connect, and return once the room has relayed our own greeting."""
    ws = room.enter_context(connect(url, open_timeout=10))
    ws.send(f"{name} joined")
    while ws.recv(timeout=10) != f"{name} joined":
        pass
    return ws


def test_real_room_survives_a_vanished_client(serve) -> None:
    server = serve(commands("chat.console")[0])
    url = f"{server.ws_url}/chat"
    room = ExitStack()
    people = [join(room, url, name) for name in ("ann", "ben", "cat")]
    ghost = join(room, url, "ghost")
    ghost.socket.shutdown(socket.SHUT_RDWR)  # Gone without a close frame.
    ghost.socket.close()
    sent = [f"message {i}" for i in range(9)]
    for i, text in enumerate(sent):
        people[i % 3].send(text)
    for ws in people:
        received: list[str] = []
        while len(received) < len(sent):
            text = ws.recv(timeout=10)
            if not text.endswith(" joined"):  # Greetings of later joiners.
                received.append(text)
        assert sorted(received) == sent
    room.close()  # Everyone leaves with a close frame, but the ghost.
    assert server.stop() == 0
    assert "Traceback" not in server.output


def test_a_bare_static_dir_is_found_from_the_working_directory(
    tmp_path, monkeypatch
) -> None:
    (tmp_path / "static").mkdir()
    monkeypatch.chdir(tmp_path)
    assert responder.API(static_dir="static").static_dir == tmp_path / "static"


def test_sending_to_a_gone_client_raises_websocketdisconnect() -> None:
    """What the GoneClient above stands for, with uvicorn's own exception."""

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    async def send(message: dict) -> None:
        raise ClientDisconnected  # What uvicorn raises once the peer is gone.

    ws = WebSocket({"type": "websocket"}, receive, send)
    ws.client_state = ws.application_state = WebSocketState.CONNECTED
    # Its own event loop, in a thread: Playwright's may be running in this one.
    with start_blocking_portal() as portal, pytest.raises(WebSocketDisconnect) as gone:
        portal.call(ws.send_text, "anyone there?")
    assert gone.value.code == 1006
