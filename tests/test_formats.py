"""Section 5: text, JSON and binary messages."""

import hashlib
import json

import pytest
from formats import api
from starlette.testclient import TestClient

client = TestClient(api)


def test_text_route_counts_words() -> None:
    with client.websocket_connect("/text") as ws:
        ws.send_text("web sockets are fun")
        assert ws.receive_text() == "4 words"


def test_json_route_acknowledges_by_id() -> None:
    with client.websocket_connect("/json") as ws:
        ws.send_json({"id": 7, "text": "hi"})
        assert ws.receive_json() == {"type": "ack", "id": 7}


def test_bytes_route_returns_sha256() -> None:
    data = bytes(range(256))
    with client.websocket_connect("/bytes") as ws:
        ws.send_bytes(data)
        assert ws.receive_bytes() == hashlib.sha256(data).digest()


def test_text_that_is_not_json_makes_receive_json_raise() -> None:
    with pytest.raises(json.JSONDecodeError):
        with client.websocket_connect("/json") as ws:
            ws.send_text("not json")
            ws.receive_json()
