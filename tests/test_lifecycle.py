"""Section 8: the life of a connection and the close codes the page names."""

import logging
import socket

import lifecycle
import pytest
import responder
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from support import commands
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

client = TestClient(lifecycle.api)


def close_code(ws) -> tuple[int, str | None]:
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    return closed.value.code, closed.value.reason


def test_open_connection_echoes(caplog) -> None:
    caplog.set_level(logging.INFO, "lifecycle")
    with client.websocket_connect("/lifecycle") as ws:
        ws.send_text("Hello")
        assert ws.receive_text() == "Hello"
    assert caplog.messages == ["open", "client left with code 1000"]


def test_bye_closes_normally_with_1000(caplog) -> None:
    caplog.set_level(logging.INFO, "lifecycle")
    with client.websocket_connect("/lifecycle") as ws:
        ws.send_text("bye")
        assert close_code(ws) == (1000, "")
    assert caplog.messages[-1] == "closed by the server with 1000"


def test_shouting_breaks_a_rule_1008() -> None:
    with client.websocket_connect("/lifecycle") as ws:
        ws.send_text("HELLO")
        assert close_code(ws) == (1008, "No shouting")


def test_idle_client_is_closed_with_1001(monkeypatch) -> None:
    monkeypatch.setattr(lifecycle.api.router, "ws_idle_timeout", 0.05)
    with client.websocket_connect("/lifecycle") as ws:
        assert close_code(ws)[0] == 1001


def test_handler_crash_closes_with_1011() -> None:
    broken = responder.API()

    @broken.route("/ws", websocket=True)
    async def crash(ws: WebSocket) -> None:
        await ws.accept()
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        with TestClient(broken).websocket_connect("/ws") as ws:
            assert close_code(ws)[0] == 1011


def test_vanished_client_is_seen_as_1005(serve) -> None:
    server = serve(commands("lifecycle.console")[0])
    with connect(f"{server.ws_url}/lifecycle") as ws:
        server.wait_for("INFO:lifecycle:open")
        ws.socket.shutdown(socket.SHUT_RDWR)
        server.wait_for("INFO:lifecycle:client left with code 1005")


def test_stopping_uvicorn_closes_clients_with_1012(serve) -> None:
    server = serve(commands("lifecycle.console")[0])
    with connect(f"{server.ws_url}/lifecycle") as ws:
        server.wait_for("INFO:lifecycle:open")
        assert server.stop() == 0
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
