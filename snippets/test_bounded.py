"""The same check, bounded: it waits only for what it asked for."""

from echo import api
from starlette.testclient import TestClient


def test_no_greeting() -> None:
    with TestClient(api).websocket_connect("/ws") as ws:
        ws.send_text("hi")
        # A greeting would have come first: the answer to "hi" proves none did.
        assert ws.receive_text() == "Echo: hi"
