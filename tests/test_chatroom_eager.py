"""chatroom_eager.py: sent at once while a member keeps up, queued once not."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import chatroom
import chatroom_eager
import pytest
from chatroom_eager import EagerMember
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from test_chatroom import heard


class Peer:
    """A stand-in connection: each send waits while its gate is shut."""

    def __init__(self, expected: int = 0) -> None:
        self.sent: list[str] = []
        self.expected = expected
        self.all_sent = asyncio.Event()  # Set once it has sent `expected` texts.
        self.gate = asyncio.Event()
        self.gate.set()
        self.waits: asyncio.Queue[str] = asyncio.Queue()  # Each send that waits.
        self.ended: list[str] = []  # How each send that waited ended.

    async def send_text(self, text: str) -> None:
        if not self.gate.is_set():
            self.waits.put_nowait(text)
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.ended.append(f"{text} cancelled")
                raise
            except GeneratorExit:  # Closed, never to be run on.
                self.ended.append(f"{text} closed")
                raise
            self.ended.append(f"{text} sent")
        self.sent.append(text)
        if len(self.sent) == self.expected:
            self.all_sent.set()


def test_a_member_that_keeps_up_is_sent_to_without_waking_its_task() -> None:
    async def main() -> tuple[Peer, EagerMember, bool]:
        peer = Peer()
        member = EagerMember(peer)  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)  # Its first step: nothing queued, it waits.
        member.deliver("one")
        member.deliver("two")
        asleep = member.wakeup is not None and not member.wakeup.done()
        sender.cancel()
        return peer, member, asleep

    peer, member, asleep = asyncio.run(main())
    assert peer.sent == ["one", "two"]  # Before deliver() returned.
    assert asleep and (member.queued, len(member.outbox)) == (0, 0)


def test_a_send_that_waits_is_finished_by_its_task_and_order_is_kept() -> None:
    async def main() -> tuple[Peer, EagerMember, int]:
        peer = Peer(expected=4)
        member = EagerMember(peer)  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)
        member.deliver("one")
        peer.gate.clear()  # Its buffers are full from now on.
        for text in ("two", "three", "four"):
            member.deliver(text)
        held = member.queued  # "two" waits in its send; the rest in the outbox.
        peer.gate.set()
        await asyncio.wait_for(peer.all_sent.wait(), 5)
        sender.cancel()
        return peer, member, held

    peer, member, held = asyncio.run(main())
    assert peer.sent == ["one", "two", "three", "four"]
    assert peer.ended == ["two sent"]  # Only the first waited: the rest queued.
    assert held == len("two") + len("three") + len("four")
    assert (member.queued, member.started, len(member.outbox)) == (0, None, 0)


def test_a_send_that_fails_is_raised_by_its_task_not_in_broadcast() -> None:
    calls = 0

    async def send_text(text: str) -> None:
        nonlocal calls
        calls += 1
        raise WebSocketDisconnect(1006)

    async def main() -> EagerMember:
        member = EagerMember(SimpleNamespace(send_text=send_text))  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)
        member.deliver("one")  # Does not raise here...
        member.deliver("two")  # ...and what comes after waits, untried.
        with pytest.raises(WebSocketDisconnect):
            await asyncio.wait_for(sender, 5)  # ...but in the member's task.
        return member

    member = asyncio.run(main())
    assert calls == 1 and [text for text, _ in member.outbox] == ["two"]


def test_cancelling_its_task_cancels_the_send_it_is_finishing() -> None:
    async def main() -> Peer:
        peer = Peer()
        peer.gate.clear()
        member = EagerMember(peer)  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)
        member.deliver("one")  # Waits: handed to the task, which wakes...
        await asyncio.sleep(0)  # ...and goes on with it.
        sender.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sender
        return peer

    peer = asyncio.run(main())
    assert peer.ended == ["one cancelled"] and peer.sent == []


def test_a_member_too_far_behind_is_still_stopped_with_1008() -> None:
    peer = Peer()
    peer.gate.clear()

    async def main() -> EagerMember:
        member = EagerMember(peer)  # type: ignore[arg-type]
        member.deliver("x" * 1000)  # Its send waits, and counts.
        member.deliver("y" * (chatroom.OUTBOX_BYTES - 1000))  # Full to the byte.
        assert member.close_code is None
        member.deliver("z")
        return member

    member = asyncio.run(main())
    assert member.close_code == 1008 and member.queued == chatroom.OUTBOX_BYTES


def test_the_room_speaks_chatroom_pys_protocol() -> None:
    with (
        TestClient(chatroom_eager.api) as client,
        client.websocket_connect("/chat/lobby") as ann,
        client.websocket_connect("/chat/lobby") as ben,
        client.websocket_connect("/chat/other") as cat,
    ):
        for text in ("hi", "😀", "bye"):
            ann.send_json({"text": text})
        for member in (ann, ben):
            assert [member.receive_json() for _ in range(3)] == [
                heard("hi"),
                heard("😀"),
                heard("bye"),
            ]
        cat.send_json({"text": "anyone?"})  # Another room hears none of it.
        assert cat.receive_json() == heard("anyone?")
    with TestClient(chatroom_eager.api) as client:  # chatroom.py's rules: refused.
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect("/chat/Not-A-Name"):
                pass
        assert refused.value.code == 1008


def test_a_send_that_waits_more_than_once_is_finished_too() -> None:
    sent: list[str] = []

    async def main() -> None:
        both_sent = asyncio.Event()

        async def send_text(text: str) -> None:
            await asyncio.sleep(0)  # A bare yield: a task runs others, then this.
            await asyncio.sleep(0)
            sent.append(text)
            if len(sent) == 2:
                both_sent.set()

        member = EagerMember(SimpleNamespace(send_text=send_text))  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)
        member.deliver("one")
        member.deliver("two")
        await asyncio.wait_for(both_sent.wait(), 5)
        sender.cancel()

    asyncio.run(main())
    assert sent == ["one", "two"]


def test_what_comes_while_its_task_is_sending_queues_behind_it() -> None:
    async def main() -> Peer:
        peer = Peer(expected=3)
        member = EagerMember(peer)  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)
        peer.gate.clear()
        member.deliver("one")  # Waits: handed to its task.
        member.deliver("two")  # Queued behind it.
        assert await peer.waits.get() == "one"
        peer.gate.set()  # "one" goes; "two" then waits in its task's own send:
        peer.gate.clear()
        assert await peer.waits.get() == "two"
        assert (member.started, list(member.outbox)) == (None, [])
        member.deliver("three")  # So this one must queue, not go first.
        peer.gate.set()
        await asyncio.wait_for(peer.all_sent.wait(), 5)
        sender.cancel()
        return peer

    peer = asyncio.run(main())
    assert peer.sent == ["one", "two", "three"]


def test_a_send_its_task_never_took_up_is_closed_when_the_task_ends() -> None:
    async def main() -> Peer:
        peer = Peer()
        member = EagerMember(peer)  # type: ignore[arg-type]
        sender = asyncio.create_task(member.send_forever())
        await asyncio.sleep(0)
        peer.gate.clear()
        member.deliver("one")  # Waits: handed to its task, which has not run...
        sender.cancel()  # ...and is cancelled first, as take_part() may do.
        with pytest.raises(asyncio.CancelledError):
            await sender
        assert member.started is not None  # Still held, so not closed by the GC...
        return list(peer.ended)  # ...but by the task, as it ended.

    assert asyncio.run(main()) == ["one closed"]
