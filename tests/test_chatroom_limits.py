"""The resilient room's limits, against `python snippets/chatroom.py` itself."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import chatroom
import pytest
from support import TIMEOUT, Server, commands, handshake, read_frame, send_frame
from websockets.sync.client import ClientConnection, connect

TEXT = 0x1  # The WebSocket opcode of a text frame.
HANDSHAKE = (  # The key is any 16 bytes, base64: this one is RFC 6455's sample.
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def say(text: str) -> str:
    """A message as a browser's JSON.stringify sends it: "😀" as is."""
    return json.dumps({"text": text}, ensure_ascii=False)


def largest(tag: str) -> str:
    """The text of the largest message allowed, in 4-byte characters."""
    return tag + " " + "😀" * (chatroom.MAX_MESSAGE - len(say(tag + " ")))


def dial(server: Server, source: str, receive_buffer: int = 0) -> socket.socket:
    """A TCP connection to server from source, any address in 127.0.0.0/8."""
    sock = socket.socket()
    # Closed, it lingers in TIME_WAIT on its port; SO_REUSEADDR lets a server
    # started later by another test still listen on that port.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if receive_buffer:  # Before connecting, so the window starts small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    sock.settimeout(TIMEOUT)
    return sock


def knock(
    server: Server, path: str, source: str = "127.0.0.1", receive_buffer: int = 0
) -> tuple[socket.socket, str]:
    """A bare socket from source after a handshake, and the response's status."""
    sock = dial(server, source, receive_buffer)
    head = handshake(sock, HANDSHAKE.format(path=path))
    return sock, head.split("\r\n")[0]


def member(server: Server, path: str, source: str) -> ClientConnection:
    """A websockets client from source, buffering whatever it is sent."""
    return connect(
        f"{server.ws_url}{path}",
        sock=dial(server, source),
        max_size=None,
        max_queue=None,
    )


def status(server: Server, field: str) -> int:
    """A memory figure of the server process, in bytes, from /proc."""
    path = Path(f"/proc/{server.process.pid}/status")
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # The kernel counts in kB.
    raise AssertionError(f"no {field} in {path}")


# Members that each send a full burst of the largest messages: together, far
# more than a member that never reads can absorb in the kernel's buffers and
# its outbox, so such a member is sure to be closed with 1008.
SPEAKERS = 16
WINDOW = 4  # Messages a speaker may be ahead of the slowest member who reads.


@contextmanager
def speakers(server: Server, room: str) -> Iterator[list[ClientConnection]]:
    """SPEAKERS members of room, from addresses of their own: no cap stops them."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(member(server, f"/chat/{room}", f"127.0.3.{n}"))
            for n in range(1, SPEAKERS + 1)
        ]


def converse(people: list[ClientConnection]) -> tuple[list[str], list[list[str]]]:
    """Each says a burst of the largest messages, in turns; the tags of all
    that was said, and of what each heard, in order.

    A speaker waits until every member who reads is at most WINDOW messages
    behind: the room is loud, but no reader falls behind by much.
    """
    said = [f"{n}.{k:02}" for k in range(chatroom.BURST) for n in range(len(people))]
    heard: list[list[str]] = [[] for _ in people]
    changed = threading.Condition()

    def listen(ws: ClientConnection, into: list[str]) -> None:
        for _ in said:
            tag = json.loads(ws.recv(timeout=TIMEOUT))["text"].split()[0]
            with changed:
                into.append(tag)
                changed.notify_all()

    threads = [
        threading.Thread(target=listen, args=pair, daemon=True)
        for pair in zip(people, heard, strict=True)
    ]
    for thread in threads:
        thread.start()
    for n, tag in enumerate(said):
        with changed:
            assert changed.wait_for(
                lambda n=n: min(map(len, heard)) >= n - WINDOW, TIMEOUT
            ), "a member who reads fell behind"
        people[int(tag.split(".")[0])].send(say(largest(tag)))
    for thread in threads:
        thread.join(TIMEOUT)
    return said, heard


def test_room_names_are_checked_before_accept(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    for room in ["a" * 33, "a%0Ab", "a%00b", "%1B%5B31m", "Main", "caf%C3%A9"]:
        sock, status_line = knock(server, f"/chat/{room}")
        sock.close()
        assert status_line == "HTTP/1.1 403 Forbidden", room
    sock, status_line = knock(server, "/chat/" + "a" * 32)
    assert status_line == "HTTP/1.1 101 Switching Protocols"
    server.wait_for("room 'a{32}' opened")
    sock.close()
    assert re.findall("room (.*) opened", server.output) == ["'" + "a" * 32 + "'"]


def test_connections_are_capped_per_address(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    with ExitStack() as stack:
        for _ in range(chatroom.MAX_PER_ADDRESS):
            sock, status_line = knock(server, "/chat/main")
            stack.callback(sock.close)
            assert status_line == "HTTP/1.1 101 Switching Protocols"
        sock, status_line = knock(server, "/chat/main")
        sock.close()
        assert status_line == "HTTP/1.1 403 Forbidden"  # One too many from here...
        sock, status_line = knock(server, "/chat/main", source="127.0.0.2")
        sock.close()
        assert status_line == "HTTP/1.1 101 Switching Protocols"  # ...not from there.


def test_a_crowd_of_handshakes_cannot_slip_past_the_cap(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    crowd = [dial(server, "127.0.0.1") for _ in range(30)]
    with ExitStack() as stack:
        for sock in crowd:
            stack.callback(sock.close)
            # All the requests first, then all the answers.
            sock.sendall(HANDSHAKE.format(path="/chat/main").encode())
        answers = [handshake(sock, "").split("\r\n")[0] for sock in crowd]
    assert answers.count("HTTP/1.1 101 Switching Protocols") == chatroom.MAX_PER_ADDRESS
    assert answers.count("HTTP/1.1 403 Forbidden") == 30 - chatroom.MAX_PER_ADDRESS


def test_connections_are_capped_in_all(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    per = chatroom.MAX_PER_ADDRESS
    with ExitStack() as stack:
        for n in range(chatroom.MAX_CONNECTIONS):
            sock, status_line = knock(server, "/chat/main", f"127.0.1.{n // per + 1}")
            stack.callback(sock.close)
            assert status_line == "HTTP/1.1 101 Switching Protocols"
        sock, status_line = knock(server, "/chat/main", source="127.0.2.1")
        sock.close()
        assert status_line == "HTTP/1.1 403 Forbidden"  # A new address, yet refused.


def test_a_flood_neither_evicts_a_member_nor_reaches_it_in_full(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    with member(server, "/chat/main", "127.0.0.1") as ann:
        flood, _ = knock(server, "/chat/main", source="127.0.0.2")
        started = time.monotonic()
        for n in range(2000):  # As fast as the socket takes them.
            send_frame(flood, TEXT, say(f"flood {n}").encode())
        replies = [json.loads(read_frame(flood)[1]) for _ in range(2000)]
        elapsed = time.monotonic() - started
        flood.close()
        relayed = [r["text"] for r in replies if r["type"] == "message"]
        dropped = [r for r in replies if r["type"] == "error"]
        assert dropped and all(
            r["error"] == "too fast: message dropped" for r in dropped
        )
        assert (
            chatroom.BURST <= len(relayed) <= chatroom.BURST + chatroom.RATE * elapsed
        )
        ann.send(say("ann is still here"))
        heard = []
        while not heard or heard[-1] != "ann is still here":
            heard.append(json.loads(ann.recv(timeout=TIMEOUT))["text"])
        assert heard == [*relayed, "ann is still here"]  # Only what was relayed.
    assert "1008" not in server.output  # Nobody was evicted.


STALLED = 5  # Members that never read, in the emoji flood below.


def flood_stalled(server: Server) -> tuple[int, int, int]:
    """STALLED members that never read, then every speaker's emoji burst.

    Returns the server's RSS before the flood, the most it ever held
    (VmHWM) once every stalled member was closed, and how many spoke.
    Shared by the memory test and `make measure`.
    """
    stalled = [
        knock(server, "/chat/main", f"127.0.4.{n}", receive_buffer=4096)[0]
        for n in range(1, STALLED + 1)
    ]
    try:
        with speakers(server, "main") as people:
            people[0].send(say("warm-up"))
            for person in people:
                assert json.loads(person.recv(timeout=TIMEOUT))["text"] == "warm-up"
            before = status(server, "VmRSS")
            converse(people)
            for _ in stalled:
                server.wait_for(r"closing a member of 'main' with 1008$")
            return before, status(server, "VmHWM"), len(people)
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.parametrize("shown", ["chatroom.console", "chatroom_eager.console"])
def test_stalled_members_under_an_emoji_flood_stay_within_the_bound(
    serve, shown: str
) -> None:
    server = serve(commands(shown)[0])
    before, peak, speaking = flood_stalled(server)
    assert server.output.count("with 1008") == STALLED  # And only they.
    members = STALLED + speaking
    # The outbox, asyncio's write buffer, a frame on its way in and one out.
    per_member = chatroom.OUTBOX_BYTES + 64 * 1024 + 2 * chatroom.MAX_FRAME
    slack = 16 * 1024 * 1024  # Python's allocator, buffers, coverage's data.
    assert peak - before < members * per_member + slack


def test_the_pages_figures_are_the_measured_ones() -> None:
    from measure_chatroom import RESULTS, figures

    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    assert results["figures"] == figures(results)  # Not edited by hand.
    assert results["idle"]["connections"] == chatroom.MAX_CONNECTIONS
