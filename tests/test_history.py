"""Database connections per message, not per socket: the pool holds out."""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack
from pathlib import Path

import history
import pytest
from support import TIMEOUT, Server, commands, handshake
from websockets.sync.client import ClientConnection, connect

POOL_SIZE = 2
REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def start(serve, tmp_path: Path) -> Server:
    return serve(
        commands("history.console")[0],
        CHAT_DATABASE=str(tmp_path / "chat.sqlite3"),
        CHAT_POOL_SIZE=str(POOL_SIZE),
    )


def member(server: Server, path: str, source: str = "127.0.0.1") -> ClientConnection:
    """A member connecting from source: any address in 127.0.0.0/8."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return connect(f"{server.ws_url}{path}", sock=sock, max_queue=None)


def test_a_connection_per_socket_leaves_the_next_member_waiting(
    serve, tmp_path
) -> None:
    server = start(serve, tmp_path)
    with ExitStack() as stack:
        holders = [
            stack.enter_context(member(server, "/held/main")) for _ in range(POOL_SIZE)
        ]
        with socket.create_connection(("127.0.0.1", server.port)) as late:
            late.settimeout(TIMEOUT)
            late.sendall(REQUEST.format(path="/held/main").encode())
            server.wait_for(r"waiting for a database connection: all 2 in use$")
            holders[0].close()  # One leaves, and gives its connection back.
            head = handshake(late, "")
            assert head.startswith("HTTP/1.1 101 "), head


def test_a_connection_per_message_serves_a_hundred(serve, tmp_path) -> None:
    server = start(serve, tmp_path)
    with ExitStack() as stack:
        people = [
            stack.enter_context(member(server, "/chat/main", f"127.0.6.{n // 20}"))
            for n in range(100)  # 20 an address: chatroom.py's cap.
        ]
        for n, person in enumerate(people):
            person.send(json.dumps({"text": f"message {n}"}))
        for person in people:
            heard = [json.loads(person.recv(timeout=TIMEOUT)) for _ in people]
            assert sorted(m["text"] for m in heard) == sorted(
                f"message {n}" for n in range(100)
            )
        server.wait_for(r"kept message 100, of 'main'$")
        with member(server, "/chat/main") as newcomer:  # Sent the last 20.
            told = [json.loads(newcomer.recv(timeout=TIMEOUT)) for _ in range(20)]
    kept = [m["text"] for m in told]
    said = [m["text"] for m in heard]  # The last person heard all, in order.
    assert kept == said[-history.HISTORY :]
    assert "waiting for a database connection" not in server.output


@pytest.mark.parametrize("path", ["/chat/Main", "/held/Main"])
def test_the_rooms_rules_still_hold(serve, tmp_path, path: str) -> None:
    server = start(serve, tmp_path)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(TIMEOUT)
        head = handshake(sock, REQUEST.format(path=path))
    assert head.startswith("HTTP/1.1 403 "), head  # A bad name, as in chatroom.py.


def test_the_pool_has_3_connections_unless_set() -> None:
    assert history.POOL_SIZE == 3  # As the page says.
