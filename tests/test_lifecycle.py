"""Section 8: the life of a connection and the close codes the page names."""

import logging
import socket

import lifecycle
import pytest
import responder
import uvicorn
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from support import closed_by_app, closed_by_stopping, commands
from websockets.sync.client import connect

client = TestClient(lifecycle.api)


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
        assert closed_by_app(ws) == (1000, "")
    assert caplog.messages[-1] == "closed by the server with 1000"


def test_shouting_breaks_a_rule_1008(caplog) -> None:
    caplog.set_level(logging.INFO, "lifecycle")
    with client.websocket_connect("/lifecycle") as ws:
        ws.send_text("HELLO")
        assert closed_by_app(ws) == (1008, "No shouting")
    assert caplog.messages[-1] == "closed by the server with 1008"


def test_idle_client_is_closed_with_1001(monkeypatch) -> None:
    monkeypatch.setattr(lifecycle.api.router, "ws_idle_timeout", 0.05)
    with client.websocket_connect("/lifecycle") as ws:
        assert closed_by_app(ws)[0] == 1001


def test_handler_crash_closes_with_1011() -> None:
    broken = responder.API()

    @broken.route("/ws", websocket=True)
    async def crash(ws: WebSocket) -> None:
        await ws.accept()
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        with TestClient(broken).websocket_connect("/ws") as ws:
            assert closed_by_app(ws)[0] == 1011


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
        assert closed_by_stopping(server, ws) == 1012


def test_a_browser_leaving_the_page_closes_with_1001(serve, browser) -> None:
    server = serve(commands("lifecycle.console")[0])
    page = browser.new_page()
    page.evaluate(
        "url => { window.socket = new WebSocket(url); }", f"{server.ws_url}/lifecycle"
    )
    server.wait_for("INFO:lifecycle:open")
    page.goto("about:blank")  # Navigating away.
    server.wait_for("INFO:lifecycle:client left with code 1001")
    page.close()


def test_uvicorn_pings_every_20_seconds_by_default() -> None:
    config = uvicorn.Config(lifecycle.api)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (20.0, 20.0)
