"""The resilient room with one of its savings undone, for the benchmark.

bench_fanout.py serves chatroom.py with --undo=NAME to price what a saving
earns: the same room, the same run, one change put back.
"""

import asyncio
import json
from collections.abc import Callable

import chatroom
from starlette.websockets import WebSocket


class EventMember(chatroom.Member):
    """A member whose sender is woken by an asyncio.Event, not a bare future."""

    def __init__(self, ws: WebSocket) -> None:
        super().__init__(ws)
        self.ready = asyncio.Event()

    def deliver(self, text: str, size: int | None = None) -> None:
        super().deliver(text, size)
        self.ready.set()

    async def send_forever(self) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            await self.send_queued()


def broadcast_encoding_each(room: str, event: dict) -> None:
    """broadcast() that encodes and measures every member's copy anew."""
    for member in list(chatroom.rooms.get(room, ())):
        member.deliver(json.dumps(event, ensure_ascii=False))


def use_events() -> None:
    chatroom.Member = EventMember  # type: ignore[misc]


def encode_each() -> None:
    chatroom.broadcast = broadcast_encoding_each


UNDO: dict[str, Callable[[], None]] = {"event": use_events, "encode-each": encode_each}
