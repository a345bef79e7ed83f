"""Talking to the room from outside: an HTTP route and a background task.

The page's Try it runs in tests/test_try_it.py; the thread test is a snippet."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from support import (
    TIMEOUT,
    Server,
    commands,
    raw_websocket,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def post(server: Server, room: str, body: bytes) -> tuple[int, dict]:
    """POST body to the room's announcement address: the status and the JSON."""
    request = urllib.request.Request(
        f"{server.http_url}/announce/{room}", data=body, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def start(serve, **env: str) -> Server:
    return serve(commands("announce.console")[0], **env)


def test_an_announcement_reaches_every_member_of_the_room(serve) -> None:
    server = start(serve)
    url = f"{server.ws_url}/chat/main"
    with connect(url) as ann, connect(url) as ben:
        assert post(server, "main", b'{"text": "Lunch"}') == (200, {"members": 2})
        for member in (ann, ben):
            assert json.loads(member.recv(timeout=TIMEOUT)) == {
                "type": "announcement",
                "text": "Lunch",
            }
    assert post(server, "empty", b'{"text": "Lunch"}') == (200, {"members": 0})


@pytest.mark.parametrize(
    "body",
    [
        b"Lunch",
        b'["Lunch"]',
        b'{"text": 1}',
        b"\xff",
        b'{"text": "%s"}' % (b"x" * 10_001),
        b'{"type": "ping", "text": 5}',  # A heartbeat is not an announcement,
        b'{"type": "ping", "text": "hi"}',  # whatever it carries.
    ],
)
def test_anything_but_a_text_is_refused_with_400(serve, body: bytes) -> None:
    server = start(serve)
    with connect(f"{server.ws_url}/chat/main") as member:
        status, answer = post(server, "main", body)
        assert status == 400
        assert answer == {"error": 'expected {"text": ...}, up to 10000 characters'}
        member.send('{"text": "still here"}')  # Nothing was posted in between.
        assert json.loads(member.recv(timeout=TIMEOUT))["text"] == "still here"


def test_a_member_that_never_reads_cannot_hold_up_the_http_route(serve) -> None:
    server = start(serve)
    silent = raw_websocket(server, "/chat/main", receive_buffer=4096)  # Never reads.
    big = json.dumps({"text": "😀" * 10_000}).encode()  # 40 kB a message.
    # 8 MB in all: far more than the kernel's buffers and the outbox hold. Were
    # the route to wait for the member, urlopen would time out and fail.
    statuses = {post(server, "main", big)[0] for _ in range(200)}
    assert statuses == {200}
    server.wait_for(r"closing a member of 'main' with 1008$")  # Cut off instead.
    silent.close()


def test_the_room_hears_its_member_count_from_a_background_task(serve) -> None:
    server = start(serve, CHAT_TICK_SECONDS="0.1")
    with connect(f"{server.ws_url}/chat/main") as member:
        message = json.loads(member.recv(timeout=TIMEOUT))
        assert message == {"type": "members", "count": 1}
        assert server.stop() == 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                member.recv(timeout=TIMEOUT)  # Counts, up to the close frame.
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert "Task was destroyed" not in server.output  # Shutdown stopped the task.
