"""The resilient chat room, in-process: rooms, limits, bad input, slow members."""

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from types import SimpleNamespace

import chatroom
import pytest
import uvicorn
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from support import SNIPPETS, TIMEOUT, closed_by_app, refused_by_app


@pytest.fixture
def client() -> Iterator[TestClient]:
    """One portal, so one event loop, for all the sessions of a test."""
    with TestClient(chatroom.api) as client:
        yield client


def say(text: str) -> str:
    return json.dumps({"text": text})


def heard(text: str) -> dict:
    return {"type": "message", "text": text}


def test_members_of_a_room_hear_each_other(client) -> None:
    with client.websocket_connect("/chat/lobby") as ann:
        ann.send_text(say("hi"))
        assert ann.receive_json() == heard("hi")
        with client.websocket_connect("/chat/lobby") as ben:
            ben.send_text(say("hello ann"))
            assert ann.receive_json() == heard("hello ann")
            assert ben.receive_json() == heard("hello ann")
    assert chatroom.rooms == {}


def test_rooms_are_isolated_and_removed_when_empty(client, caplog) -> None:
    caplog.set_level("INFO", "chatroom")
    with (
        client.websocket_connect("/chat/red") as red,
        client.websocket_connect("/chat/blue") as blue,
    ):
        blue.send_text(say("blue only"))
        assert blue.receive_json() == heard("blue only")
        red.send_text(say("red only"))
        assert red.receive_json() == heard("red only")  # Not "blue only" first.
        assert set(chatroom.rooms) == {"red", "blue"}
    assert chatroom.rooms == {}
    assert caplog.messages == [
        "room 'red' opened",
        "room 'blue' opened",
        "room 'blue' closed",
        "room 'red' closed",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "[1, 2]",
        '"text"',
        '{"txt": "hi"}',
        '{"text": 5}',  # Only a string is relayed, never str() of a value.
        '{"text": {"a": [1]}}',
        '{"text": "\\ud800"}',  # A lone surrogate: not text, cannot be UTF-8.
    ],
)
def test_bad_json_gets_an_error_event_and_the_connection_stays(
    client, bad: str
) -> None:
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_text(bad)
        assert ws.receive_json() == {"type": "error", "error": "expected JSON"}
        ws.send_text(say("still here"))
        assert ws.receive_json() == heard("still here")


def test_message_over_the_limit_is_closed_with_1009(client) -> None:
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_text(say("x" * chatroom.MAX_MESSAGE))
        assert closed_by_app(ws)[0] == 1009
    assert chatroom.rooms == {}


def test_message_at_the_limit_is_accepted(client) -> None:
    text = "x" * (chatroom.MAX_MESSAGE - len(say("")))
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_text(say(text))
        assert ws.receive_json() == heard(text)


def test_bytes_on_the_text_protocol_are_closed_with_1003(client) -> None:
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_bytes(b"\x00\x01")
        assert closed_by_app(ws)[0] == 1003


def test_idle_member_is_closed_with_1001(client, monkeypatch) -> None:
    monkeypatch.setattr(chatroom.api.router, "ws_idle_timeout", 0.05)
    with client.websocket_connect("/chat/lobby") as ws:
        assert closed_by_app(ws)[0] == 1001
    assert chatroom.rooms == {}


def test_member_too_far_behind_is_stopped_with_1008() -> None:
    member = chatroom.Member(ws=None)  # type: ignore[arg-type]
    emoji = "😀" * 1024  # 4 KiB of UTF-8: the outbox counts bytes, not messages.
    for _ in range(chatroom.OUTBOX_BYTES // len(emoji.encode())):
        member.deliver(emoji)
    assert not member.stopped.is_set()
    assert member.queued == chatroom.OUTBOX_BYTES
    member.deliver("!")  # One byte too many.
    assert member.stopped.is_set()
    assert member.close_code == 1008
    assert member.queued == chatroom.OUTBOX_BYTES  # Memory stays bounded.
    assert len(member.outbox) == chatroom.OUTBOX_BYTES // 4096


def test_a_broadcast_is_encoded_once_and_unescaped(client) -> None:
    with (
        client.websocket_connect("/chat/lobby") as ann,
        client.websocket_connect("/chat/lobby") as ben,
    ):
        members = list(chatroom.rooms["lobby"])
        chatroom.broadcast("lobby", heard("😀"))
        (ann_text, ann_size), (ben_text, ben_size) = (m.outbox[0] for m in members)
        assert ann_text is ben_text  # One string, shared by every outbox.
        assert ann_text == '{"type": "message", "text": "😀"}'  # Not "\\ud83d…".
        assert ann_size == ben_size == len(ann_text.encode())
        assert ann.receive_json() == ben.receive_json() == heard("😀")
    assert len("😀".encode()) == 4
    assert json.dumps("😀") == '"\\ud83d\\ude00"'  # What ensure_ascii=True makes.


def test_the_sender_drains_everything_queued_in_one_wake_up() -> None:
    sent: list[tuple[str, object]] = []  # Each text, with the future it woke on.

    async def main() -> tuple[chatroom.Member, object]:
        all_sent = asyncio.Event()

        async def send_text(text: str) -> None:
            sent.append((text, member.wakeup))
            if len(sent) == 3:
                all_sent.set()

        member = chatroom.Member(SimpleNamespace(send_text=send_text))  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)  # The sender's first step: nothing queued, it waits.
        first = member.wakeup
        assert first is not None and not first.done()
        for text in ("first", "second", "third"):
            member.deliver(text)
        await all_sent.wait()
        sender.cancel()
        return member, first

    member, first = asyncio.run(main())
    assert sent == [("first", first), ("second", first), ("third", first)]
    assert (member.queued, len(member.outbox)) == (0, 0)


def test_the_largest_message_fits_a_burst_in_every_outbox(client) -> None:
    said = "😀" * (chatroom.MAX_MESSAGE - len('{"text":""}'))  # 4 bytes each.
    largest = '{"text":"' + said + '"}'
    assert len(largest) == chatroom.MAX_MESSAGE
    assert len(largest.encode()) <= chatroom.MAX_FRAME  # Uvicorn lets it in.
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_text(largest)
        assert ws.receive_json() == heard(said)
    event = json.dumps(heard(said), ensure_ascii=False)  # As broadcast sends it.
    assert len(event.encode()) <= chatroom.MAX_FRAME
    assert chatroom.BURST * chatroom.MAX_FRAME <= chatroom.OUTBOX_BYTES


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_token_bucket_limits_the_rate_and_the_burst(monkeypatch) -> None:
    clock = Clock()
    monkeypatch.setattr(chatroom, "time", clock)
    member = chatroom.Member(ws=None)  # type: ignore[arg-type]
    assert [member.may_send() for _ in range(chatroom.BURST + 1)] == [True] * (
        chatroom.BURST
    ) + [False]
    clock.now += 1  # One second refills RATE tokens...
    assert sum(member.may_send() for _ in range(100)) == chatroom.RATE
    clock.now += 3600  # ...and an hour of silence no more than BURST.
    assert sum(member.may_send() for _ in range(100)) == chatroom.BURST


def test_a_client_over_the_rate_is_told_and_its_message_dropped(
    client, monkeypatch
) -> None:
    monkeypatch.setattr(chatroom, "time", Clock())  # No token comes back.
    with client.websocket_connect("/chat/lobby") as ws:
        for n in range(chatroom.BURST):
            ws.send_text(say(f"{n}"))
            assert ws.receive_json() == heard(f"{n}")
        ws.send_text(say("one too many"))
        assert ws.receive_json() == {
            "type": "error",
            "error": "too fast: message dropped",
        }
        ws.send_text(json.dumps({"type": "ping"}))  # Pings count, too.
        assert ws.receive_json()["error"] == "too fast: message dropped"


def test_json_nested_too_deeply_gets_an_error_event_and_one_log_line(
    client, caplog
) -> None:
    caplog.set_level("INFO", "chatroom")
    with client.websocket_connect("/chat/lobby") as ws:
        caplog.clear()
        ws.send_text('{"text": ' + "[" * 5000)
        assert ws.receive_json() == {"type": "error", "error": "expected JSON"}
        ws.send_text(say("still here"))
        assert ws.receive_json() == heard("still here")
        assert caplog.messages == ["refused JSON nested too deeply"]


@pytest.mark.parametrize(
    "room",
    [
        "a" * 33,  # Too long.
        "a%0Ab",  # A newline.
        "a%00b",  # NUL.
        "%1B%5B31m",  # An escape sequence.
        "Main",  # Capitals.
        "a.b",  # Dots: no "..".
        "caf%C3%A9",  # Not ASCII: "é" has look-alikes.
    ],
)
def test_room_names_outside_the_pattern_are_refused_before_accept(
    client, room: str
) -> None:
    assert refused_by_app(client, f"/chat/{room}") == 1008
    assert chatroom.rooms == {}


def test_a_room_name_of_32_characters_is_fine(client) -> None:
    name = "a-0" * 10 + "zz"
    with client.websocket_connect(f"/chat/{name}"):
        assert set(chatroom.rooms) == {name}


def test_connections_are_capped_per_address_and_in_all(client, monkeypatch) -> None:
    monkeypatch.setattr(chatroom, "MAX_PER_ADDRESS", 2)
    with ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(client.websocket_connect("/chat/lobby"))
        assert chatroom.connections == {"testclient": 2}
        assert refused_by_app(client, "/chat/lobby") == 1008
        monkeypatch.setattr(chatroom, "MAX_PER_ADDRESS", 10)
        monkeypatch.setattr(chatroom, "MAX_CONNECTIONS", 3)
        stack.enter_context(client.websocket_connect("/chat/other"))
        assert refused_by_app(client, "/chat/lobby") == 1008
    assert chatroom.connections == {}  # Every one is forgotten when it ends.


def test_asyncio_buffers_64_kib_for_a_connection_before_it_pauses() -> None:
    async def limits() -> tuple[int, int]:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
            try:
                return transport.get_write_buffer_limits()
            finally:
                transport.close()

    assert asyncio.run(limits()) == (16 * 1024, 64 * 1024)  # (low, high)


def test_a_close_frame_that_cannot_get_through_is_given_up(monkeypatch) -> None:
    class Stuck:
        async def close(self, code: int) -> None:
            await asyncio.Event().wait()  # Never: its buffers stay full.

    monkeypatch.setattr(chatroom, "CLOSE_TIMEOUT", 0.01)
    member = chatroom.Member(Stuck())  # type: ignore[arg-type]
    member.stop(1008)
    asyncio.run(chatroom.close(member))  # Returns, after CLOSE_TIMEOUT.


def test_json_nested_past_the_recursion_limit_raises() -> None:
    assert sys.getrecursionlimit() == 1000  # Python's default.
    with pytest.raises(RecursionError):
        json.loads("[" * 1000)


def test_a_member_gone_during_its_close_is_one_quiet_line(caplog) -> None:
    class Gone:
        async def close(self, code: int) -> None:
            raise WebSocketDisconnect(1006)

    caplog.set_level("INFO", "chatroom")
    member = chatroom.Member(Gone())  # type: ignore[arg-type]
    member.stop(1008)
    asyncio.run(chatroom.close(member))
    assert caplog.messages == ["a member went away while being closed"]


def test_handler_bug_closes_with_1011(client, monkeypatch) -> None:
    def broken(room: str, event: dict) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(chatroom, "broadcast", broken)
    with pytest.raises(ValueError, match="a bug"):
        with client.websocket_connect("/chat/lobby") as ws:
            ws.send_text(say("boom"))
            assert closed_by_app(ws)[0] == 1011
    assert chatroom.rooms == {}
    assert chatroom.connections == {}  # Its place is given back, too.


def test_a_ping_is_answered_to_its_sender_only(client) -> None:
    with (
        client.websocket_connect("/chat/lobby") as ann,
        client.websocket_connect("/chat/lobby") as ben,
    ):
        ann.send_text(json.dumps({"type": "ping"}))
        assert ann.receive_json() == {"type": "pong"}
        ann.send_text(say("after the ping"))
        assert ann.receive_json() == heard("after the ping")  # Nothing else first.
        assert ben.receive_json() == heard("after the ping")  # Ben got no pong.


def test_uvicorn_has_a_frame_limit_of_its_own() -> None:
    assert uvicorn.Config(chatroom.api).ws_max_size == 16 * 1024 * 1024
    assert chatroom.MAX_FRAME == 4 * chatroom.MAX_MESSAGE  # Ours is smaller.


@pytest.mark.parametrize(
    ("env", "limits"), [({}, "5.0 10"), ({"CHAT_RATE": "50"}, "50.0 100")]
)
def test_chat_rate_sets_the_rate_and_a_burst_of_two_seconds(env, limits) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "CHAT_RATE"} | env
    shown = subprocess.run(
        [sys.executable, "-c", "import chatroom; print(chatroom.RATE, chatroom.BURST)"],
        cwd=SNIPPETS,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert shown.stdout.split() == limits.split()
