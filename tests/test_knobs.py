"""uvicorn's WebSocket settings, on each implementation; Responder's idle timeout."""

from __future__ import annotations

import logging
import shlex
import socket
import subprocess
import sys
import time
from importlib import metadata

import idle
import pytest
import uvicorn
from packaging.requirements import Requirement
from starlette.testclient import TestClient
from support import (
    TIMEOUT,
    close_code,
    commands,
    free_port,
    handshake,
    read_frame,
    send_frame,
    snippet,
)
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import (
    WebSocketsSansIOProtocol,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

IMPLEMENTATIONS = ["websockets-sansio", "websockets", "wsproto"]
REQUEST = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)


def start(serve, **settings: str):
    """The shown command, with other values for some of its settings."""
    port = free_port()
    (shown,) = commands("knobs.console")
    words = shlex.split(shown.replace("5042", str(port)))
    for name, value in settings.items():
        words[words.index("--" + name.replace("_", "-")) + 1] = value
    return serve(shlex.join(words), port)


def opened(server) -> tuple[socket.socket, str]:
    """A raw client's socket after its handshake, and the response head."""
    sock = socket.create_connection(("127.0.0.1", server.port), TIMEOUT)
    return sock, handshake(sock, REQUEST)


def read_frame_with_flags(sock: socket.socket) -> tuple[int, bytes]:
    """An unfragmented, unmasked server frame: its first byte and its payload."""
    first, length = sock.recv(1)[0], sock.recv(1)[0] & 0x7F
    assert length < 126, "a short frame"
    payload = b""
    while len(payload) < length:
        payload += sock.recv(length - len(payload))
    return first, payload


def next_data(sock: socket.socket) -> tuple[int, bytes]:
    """The next frame that is not a ping."""
    while True:
        opcode, payload = read_frame(sock)
        if opcode != 0x9:
            return opcode, payload


def test_auto_picks_websockets_sansio_when_websockets_is_installed() -> None:
    assert AutoWebSocketsProtocol is WebSocketsSansIOProtocol
    defaults = uvicorn.Config(idle.api)
    assert defaults.ws == "auto"
    assert defaults.ws_max_size == 16 * 1024 * 1024
    assert (defaults.ws_ping_interval, defaults.ws_ping_timeout) == (20.0, 20.0)
    assert defaults.ws_per_message_deflate is True


@pytest.mark.parametrize("ws", IMPLEMENTATIONS)
def test_each_implementation_honours_every_setting(serve, ws: str) -> None:
    server = start(
        serve, ws=ws, ws_max_size="1000", ws_ping_interval="0.2", ws_ping_timeout="0.2"
    )
    sock, head = opened(server)
    with sock:
        assert "sec-websocket-extensions: permessage-deflate" in head.lower()
        send_frame(sock, 0x1, b"x" * 1000)  # At the limit: echoed, compressed...
        assert next_data(sock)[0] == 0x1  # (so only its opcode is compared)
        send_frame(sock, 0x1, b"x" * 1001)  # ...one byte over: closed with 1009.
        assert close_code(sock) == 1009
    sock, _ = opened(server)
    with sock:  # It answers no ping: after 0.2 s a ping, after 0.2 more, 1011.
        assert read_frame(sock)[0] == 0x9
        opcode, payload = read_frame(sock)
    timed_out = (1011).to_bytes(2, "big") + b"keepalive ping timeout"
    assert (opcode, payload) == (0x8, timed_out)


@pytest.mark.parametrize("ws", IMPLEMENTATIONS)
def test_each_implementation_can_turn_compression_off(serve, ws: str) -> None:
    server = start(serve, ws=ws, ws_per_message_deflate="false")
    sock, head = opened(server)
    with sock:
        assert "permessage-deflate" not in head.lower()
        send_frame(sock, 0x1, b"hello")
        assert read_frame(sock) == (0x1, b"Echo: hello")  # Plain, uncompressed.


def test_the_legacy_implementation_warns_that_it_is_deprecated(serve) -> None:
    server = start(serve, ws="websockets")
    assert snippet("legacy_warning.txt").strip() in server.output
    for ws in ("websockets-sansio", "wsproto"):
        assert "Deprecat" not in start(serve, ws=ws).output


def test_a_member_that_only_listens_is_cut_despite_pings(serve) -> None:
    server = serve(commands("idle.console")[0], IDLE_SECONDS="1")
    with connect(f"{server.ws_url}/listen", ping_interval=0.2) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert ws.latency > 0  # Its pings were answered: the connection was alive.
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def test_a_member_that_sends_heartbeats_stays(serve) -> None:
    server = serve(commands("idle.console")[0], IDLE_SECONDS="1")
    with connect(f"{server.ws_url}/listen") as ws:
        ws.send("hello")  # Any message restarts the timer; only "ping" is answered.
        started = time.monotonic()
        while time.monotonic() - started < 3:  # Three idle timeouts' time.
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "pong"
            time.sleep(0.5)  # The time between heartbeats is what is tested.


def test_a_timeout_of_our_own_that_escapes_looks_like_an_idle_client(caplog) -> None:
    client = TestClient(idle.api)
    with caplog.at_level(logging.INFO):
        with client.websocket_connect("/lookup") as ws:
            with pytest.raises(Exception) as closed:
                ws.receive_text()
    assert closed.value.code == 1001  # "Going away", as for an idle client.
    assert caplog.records == []  # And nothing in the log.


def test_a_timeout_of_our_own_handled_in_place_says_what_happened(caplog) -> None:
    client = TestClient(idle.api)
    with caplog.at_level(logging.INFO):
        with client.websocket_connect("/lookup-guarded") as ws:
            with pytest.raises(Exception) as closed:
                ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1013, "lookup timed out")
    assert [r.getMessage() for r in caplog.records] == ["lookup took over 1.0 s"]


def test_a_lookup_in_time_answers(monkeypatch) -> None:
    monkeypatch.setattr(idle, "LOOKUP_SECONDS", 0)
    with TestClient(idle.api).websocket_connect("/lookup-guarded") as ws:
        assert ws.receive_text() == "found"
    with TestClient(idle.api).websocket_connect("/lookup") as ws:
        assert ws.receive_text() == "found"


def test_uvicorn_standard_brings_websockets_and_not_wsproto() -> None:
    standard = [
        Requirement(line).name
        for line in metadata.requires("uvicorn") or []
        if "extra == " in line and "standard" in line
    ]
    assert "websockets" in standard
    assert "wsproto" not in standard


def test_auto_picks_wsproto_only_without_websockets() -> None:
    code = (
        "import sys; sys.modules['websockets'] = None; "
        "from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol as P; "
        "print(P.__module__, P.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.stdout == "uvicorn.protocols.websockets.wsproto_impl WSProtocol\n"


def test_compression_uses_the_context_of_earlier_messages(serve) -> None:
    server = start(serve)
    sock, _ = opened(server)
    with sock:
        sizes = []
        for _ in range(2):
            send_frame(sock, 0x1, b"The same sentence, said twice in a row.")
            first, payload = read_frame_with_flags(sock)
            assert first & 0x40  # RSV1: this message is compressed.
            sizes.append(len(payload))
    assert sizes[1] < sizes[0]  # The second refers back to the first.
