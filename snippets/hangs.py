"""A TestClient test that waits forever: nothing it waits for will come."""

from echo import api
from starlette.testclient import TestClient


def test_no_greeting() -> None:
    with TestClient(api).websocket_connect("/ws") as ws:
        ws.receive_text()  # The echo server speaks only when spoken to.
