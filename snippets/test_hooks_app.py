import pytest
from hooks import api
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

client = TestClient(api)


def test_client_without_token_is_rejected() -> None:
    with pytest.raises(WebSocketDisconnect) as rejected:
        with client.websocket_connect("/private"):
            pass  # Never reached: the hook refused the handshake.
    assert rejected.value.code == 1008


def test_client_with_token_gets_in() -> None:
    with client.websocket_connect("/private?token=s3cret") as ws:
        assert ws.receive_text() == "Welcome in."
