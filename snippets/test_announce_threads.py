"""Other threads must hand broadcast() to the event loop's thread."""

import pytest
from announce import api, post_threadsafe
from chatroom import broadcast
from starlette.testclient import TestClient


def test_only_the_loops_thread_may_call_broadcast(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")  # Asyncio checks who calls it.
    # The app runs in the client's own thread; this test runs in another one.
    with TestClient(api) as client, client.websocket_connect("/chat/main") as ws:
        post_threadsafe("main", {"type": "announcement", "text": "handed over"})
        assert ws.receive_json() == {"type": "announcement", "text": "handed over"}
        with pytest.raises(RuntimeError, match="Non-thread-safe operation"):
            broadcast("main", {"type": "announcement", "text": "called directly"})
