"""Refusals that say why: 403 by default, then an HTTP denial, then a close code.

What Chromium sees is the page's Try it, in tests/test_try_it.py."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import refusals
from support import (
    TIMEOUT,
    Server,
    close_code,
    commands,
    handshake,
    read_frame,
)

REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def knock(server: Server, path: str) -> tuple[socket.socket, str]:
    """A socket after a handshake for path, and the response head."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    return sock, handshake(sock, REQUEST.format(path=path))


def answer(server: Server, path: str) -> tuple[str, bytes]:
    """The status line and the body of the answer to a handshake for path."""
    sock, head = knock(server, path)
    with sock:
        length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
        body = b""
        while len(body) < length:
            body += sock.recv(length - len(body))
    return head.split("\r\n")[0], body


def start(serve) -> Server:
    return serve(commands("refusals.console")[0])


@pytest.mark.parametrize("path", ["/chat/Main", "/nowhere"])
def test_a_close_before_accept_and_an_unknown_route_are_403(serve, path) -> None:
    server = start(serve)
    assert answer(server, path) == ("HTTP/1.1 403 Forbidden", b"")


def test_a_denial_response_has_a_status_and_a_body(serve) -> None:
    server = start(serve)
    assert answer(server, "/deny/Main") == ("HTTP/1.1 404 Not Found", b"no such room")
    # uvicorn's default WebSocket implementation also logs this, each time.
    server.wait_for(r"^ERROR: +ASGI callable returned without completing handshake")
    sock, head = knock(server, "/deny/main")  # A good name: a member.
    with sock:
        assert head.startswith("HTTP/1.1 101 "), head


def test_accept_then_close_sends_an_application_code(serve) -> None:
    server = start(serve)
    sock, head = knock(server, "/close/Main")
    with sock:
        assert head.startswith("HTTP/1.1 101 "), head  # Opened, for someone refused.
        opcode, payload = read_frame(sock)
        assert opcode == 0x8
        assert int.from_bytes(payload[:2], "big") == 4404
        assert payload[2:] == b"no such room"
    sock, head = knock(server, "/close/main")
    with sock:
        assert head.startswith("HTTP/1.1 101 "), head


def test_a_cap_is_refused_with_503_or_4503(serve) -> None:
    server = start(serve)
    members = [knock(server, "/close/main")[0] for _ in range(20)]  # The cap.
    try:
        assert answer(server, "/deny/main") == (
            "HTTP/1.1 503 Service Unavailable",
            b"too many connections",
        )
        sock, _ = knock(server, "/close/main")
        with sock:
            assert close_code(sock) == 4503
    finally:
        for member in members:
            member.close()


def test_without_the_extension_the_handler_fails_and_closes(caplog) -> None:
    """The same handler, called by a server that does not offer denials."""
    scope = {
        "type": "websocket",
        "path": "/deny/Main",
        "raw_path": b"/deny/Main",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5042),
        "scheme": "ws",
        "subprotocols": [],
    }  # No "extensions": {"websocket.http.response": {}}.
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    async def send(message: dict) -> None:
        sent.append(message)

    with ThreadPoolExecutor(1) as thread:  # A loop of its own, in its own thread.
        called = thread.submit(asyncio.run, refusals.api(scope, receive, send))
        with pytest.raises(RuntimeError, match="doesn't support the Websocket Denial"):
            called.result()
    # Responder logs it and closes with 1011: before accept, the server's 403.
    assert sent == [{"type": "websocket.close", "code": 1011, "reason": ""}]
    assert "Unhandled exception in WebSocket handler" in caplog.text
