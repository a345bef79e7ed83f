import pytest
from echo import api
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

client = TestClient(api)


def test_echo_replies() -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "Echo: hello"


def test_unknown_path_is_rejected() -> None:
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/nowhere"):
            pass  # Never reached: the handshake fails.
