"""Section 5: text, JSON and binary messages, and what the wrong ones get."""

import hashlib
import json

import pytest
from anyio.from_thread import start_blocking_portal
from formats import api
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketState
from support import close_code, closed_by_app, commands, raw_websocket, send_frame
from websockets.sync.client import connect

client = TestClient(api)
ERROR = {"type": "error", "error": 'expected a JSON object with an "id"'}


def test_text_route_counts_words() -> None:
    with client.websocket_connect("/text") as ws:
        ws.send_text("web sockets are fun")
        assert ws.receive_text() == "4 words"
        ws.send_text("")
        assert ws.receive_text() == "0 words"  # Empty text is text too.


def test_json_route_acknowledges_by_id() -> None:
    with client.websocket_connect("/json") as ws:
        ws.send_json({"id": 7, "text": "hi"})
        assert ws.receive_text() == '{"type":"ack","id":7}'


def test_bytes_route_returns_sha256() -> None:
    data = bytes(range(256))
    with client.websocket_connect("/bytes") as ws:
        ws.send_bytes(data)
        assert ws.receive_bytes() == hashlib.sha256(data).digest()


def test_bytes_sent_to_text_are_closed_with_1003() -> None:
    with client.websocket_connect("/text") as ws:
        ws.send_bytes(b"four words, as bytes")
        assert closed_by_app(ws) == (1003, "")


def test_text_sent_to_bytes_is_closed_with_1003() -> None:
    with client.websocket_connect("/bytes") as ws:
        ws.send_text("not bytes")
        assert closed_by_app(ws) == (1003, "")


@pytest.mark.parametrize(
    "text", ["not json", '{"text": "no id"}', "[1, 2]", '"id"', "null", ""]
)
def test_json_route_answers_bad_json_with_an_error(text: str) -> None:
    with client.websocket_connect("/json") as ws:
        ws.send_text(text)
        assert ws.receive_json() == ERROR
        ws.send_json({"id": "next"})  # The connection is still open.
        assert ws.receive_json() == {"type": "ack", "id": "next"}


def test_real_server_closes_one_misuser_and_serves_the_rest(serve) -> None:
    server = serve(commands("formats.console")[0])
    with connect(f"{server.ws_url}/text") as bystander:
        for path, opcode, payload in [
            ("/text", 0x2, b"bytes"),
            ("/bytes", 0x1, b"text"),
        ]:
            with raw_websocket(server, path) as sock:
                send_frame(sock, opcode, payload)
                assert close_code(sock) == 1003
        with connect(f"{server.ws_url}/json") as ws:
            ws.send("{not json")
            assert json.loads(ws.recv(timeout=10)) == ERROR
        bystander.send("still here")
        assert bystander.recv(timeout=10) == "2 words"
    assert server.stop() == 0
    assert "Traceback" not in server.output
    assert "ERROR" not in server.output


def test_receive_text_assumes_a_text_frame() -> None:
    """Why the routes read with ws.receive(): receive_text() fails on bytes."""
    messages = [{"type": "websocket.receive", "bytes": b"binary"}]

    async def receive() -> dict:
        return messages.pop()

    ws = WebSocket({"type": "websocket", "path": "/"}, receive, send=None)  # type: ignore[arg-type]
    ws.client_state = ws.application_state = WebSocketState.CONNECTED
    # Its own event loop, in a thread: Playwright's may be running in this one.
    with start_blocking_portal() as portal, pytest.raises(KeyError):
        portal.call(ws.receive_text)


def test_uvicorn_closes_text_that_is_not_utf8_with_1007(serve) -> None:
    server = serve(commands("formats.console")[0])
    with raw_websocket(server, "/json") as sock:
        send_frame(sock, 0x1, b"\xff not UTF-8")
        assert close_code(sock) == 1007
