"""bench_undo.py: with one saving put back, the room still says the same."""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace

import bench_undo
import chatroom
import pytest
from starlette.testclient import TestClient
from support import TIMEOUT
from websockets.sync.client import connect

SAID = ["hi", "😀", "third"]
HEARD = [{"type": "message", "text": text} for text in SAID]


@pytest.mark.parametrize(
    ("undo", "name", "replacement"),
    [
        ("event", "Member", bench_undo.EventMember),
        ("encode-each", "broadcast", bench_undo.broadcast_encoding_each),
    ],
)
def test_an_undone_saving_replaces_one_piece_and_keeps_the_protocol(
    monkeypatch, undo: str, name: str, replacement: object
) -> None:
    monkeypatch.setattr(chatroom, name, getattr(chatroom, name))  # Put back after.
    bench_undo.UNDO[undo]()
    assert getattr(chatroom, name) is replacement
    with (
        TestClient(chatroom.api) as client,
        client.websocket_connect("/chat/lobby") as ann,
        client.websocket_connect("/chat/lobby") as bob,
    ):
        for text in SAID:
            ann.send_json({"text": text})
        for member in (ann, bob):
            assert [member.receive_json() for _ in SAID] == HEARD


def test_a_member_woken_by_an_event_is_still_cut_off_when_too_far_behind() -> None:
    member = bench_undo.EventMember(SimpleNamespace())  # type: ignore[arg-type]
    member.deliver("x" * chatroom.OUTBOX_BYTES)
    assert member.close_code is None and member.ready.is_set()
    member.deliver("x")
    assert member.close_code == 1008 and member.queued == chatroom.OUTBOX_BYTES


@pytest.mark.parametrize("undo", sorted(bench_undo.UNDO))
def test_the_benchmark_serves_the_room_with_a_saving_undone(serve, undo) -> None:
    server = serve(f"python snippets/bench_fanout.py serve chatroom --undo={undo}")
    with (
        connect(f"{server.ws_url}/chat/bench") as ann,
        connect(f"{server.ws_url}/chat/bench") as bob,
    ):
        for text in SAID:
            ann.send(json.dumps({"text": text}))
        for member in (ann, bob):
            assert [json.loads(member.recv(timeout=TIMEOUT)) for _ in SAID] == HEARD


LOCKS = ("asyncio/locks.py", "asyncio/mixins.py")  # Event, and its loop lookup.


def asyncio_python_calls_per_wake_up(member_class: type[chatroom.Member]) -> float:
    """Calls into asyncio's Python code (its lock classes, not its C futures)
    each time a message wakes a waiting sender and it sends."""
    wakes = 100

    async def main() -> float:
        async def send_text(text: str) -> None:
            pass

        member = member_class(SimpleNamespace(send_text=send_text))  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)  # Its first step: nothing queued, it waits.
        calls = 0

        def count(frame, event: str, arg: object) -> None:
            nonlocal calls
            if event == "call" and frame.f_code.co_filename.endswith(LOCKS):
                calls += 1

        sys.setprofile(count)
        try:
            for _ in range(wakes):
                member.deliver("x", 1)
                await asyncio.sleep(0)  # The sender's step: it sends, then waits.
        finally:
            sys.setprofile(None)
        assert not member.outbox
        if member_class is chatroom.Member:  # Its future is asyncio's C one.
            assert type(member.wakeup).__module__ == "_asyncio"
        sender.cancel()
        return calls / wakes

    return asyncio.run(main())


def test_a_bare_future_runs_none_of_asyncios_python_where_an_event_does() -> None:
    assert asyncio_python_calls_per_wake_up(chatroom.Member) == 0
    assert asyncio_python_calls_per_wake_up(bench_undo.EventMember) == 5
