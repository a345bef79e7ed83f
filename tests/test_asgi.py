"""The ASGI paragraph of chapter 1: the events an app receives and sends."""

import echo
import lifecycle
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect


def recording(app, scopes: list[dict], events: list[tuple[str, dict]]):
    """app, with its scope and every ASGI event it receives and sends noted."""

    async def recorded(scope, receive, send) -> None:
        async def noting_receive() -> dict:
            event = await receive()
            events.append(("receive", event))
            return event

        async def noting_send(event: dict) -> None:
            events.append(("send", event))
            await send(event)

        scopes.append(scope)
        await app(scope, noting_receive, noting_send)

    return recorded


def test_echo_app_sees_scope_receive_and_send_as_described() -> None:
    scopes: list[dict] = []
    events: list[tuple[str, dict]] = []
    app = recording(echo.api, scopes, events)
    with TestClient(app).websocket_connect("/ws?x=1") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "Echo: hello"
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert (scope["path"], scope["query_string"]) == ("/ws", b"x=1")
    assert (b"host", b"testserver") in scope["headers"]
    assert events == [
        ("receive", {"type": "websocket.connect"}),
        ("send", {"type": "websocket.accept", "subprotocol": None, "headers": []}),
        ("receive", {"type": "websocket.receive", "text": "hello"}),
        ("send", {"type": "websocket.send", "text": "Echo: hello"}),
        ("receive", {"type": "websocket.disconnect", "code": 1000, "reason": None}),
    ]


def test_a_close_by_the_app_is_a_websocket_close_event() -> None:
    events: list[tuple[str, dict]] = []
    app = recording(lifecycle.api, [], events)
    with TestClient(app).websocket_connect("/lifecycle") as ws:
        ws.send_text("bye")
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    closing = {"type": "websocket.close", "code": 1000, "reason": ""}
    assert events[-1] == ("send", closing)
