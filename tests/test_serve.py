"""The server fixture itself: what it starts, it stops, even mid-test."""

import os
import socket

import pytest
import support
from support import commands
from websockets.sync.client import connect


def test_stopping_mid_conversation_leaves_no_process(serve) -> None:
    server = serve(commands("chat.console")[0])
    with connect(f"{server.ws_url}/chat") as ws:
        ws.send("still here?")
        assert ws.recv(timeout=10) == "still here?"
        assert server.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # No process is left in its group.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_a_port_taken_before_the_server_binds_it_is_tried_again(
    serve, monkeypatch
) -> None:
    with socket.socket() as taken:  # Another process got there first.
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy, support.free_port()])
        monkeypatch.setattr(support, "free_port", lambda: next(ports))
        server = serve(commands("chat.console")[0])
    assert server.port != busy
    assert "address already in use" not in server.output  # Its own, clean start.
    with connect(f"{server.ws_url}/chat") as ws:
        ws.send("here")
        assert ws.recv(timeout=10) == "here"
