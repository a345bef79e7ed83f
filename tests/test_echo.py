"""Section 2: the echo server, in-process and as `python snippets/echo.py`."""

import pytest
import responder
import uvicorn
from echo import api
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from support import commands
from websockets.sync.client import connect


def test_echo_answers_each_message_in_order() -> None:
    with TestClient(api).websocket_connect("/ws") as ws:
        for text in ["one", "two", ""]:
            ws.send_text(text)
            assert ws.receive_text() == f"Echo: {text}"


def test_handler_without_disconnect_handling_fails_its_test() -> None:
    """The trap the page warns about: Responder re-raises WebSocketDisconnect."""
    careless = responder.API()

    @careless.route("/ws", websocket=True)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            await ws.send_text(f"Echo: {await ws.receive_text()}")

    with pytest.raises(WebSocketDisconnect):
        with TestClient(careless).websocket_connect("/ws") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "Echo: hi"


def test_without_port_it_serves_on_localhost_5042(monkeypatch) -> None:
    served = {}
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    api.run()
    assert (served["host"], served["port"]) == ("127.0.0.1", 5042)


def test_python_snippets_echo_serves_on_port(serve) -> None:
    server = serve(commands("echo.console")[0])
    # With PORT set, Responder listens on every interface, and says so.
    server.wait_for(rf"Uvicorn running on http://0\.0\.0\.0:{server.port} ")
    assert "RANDOM per-process session key" in server.output
    with connect(f"{server.ws_url}/ws") as ws:
        ws.send("over the wire")
        assert ws.recv(timeout=10) == "Echo: over the wire"
    assert "Traceback" not in server.output
