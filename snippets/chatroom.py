"""Chat rooms that survive slow, dead and hostile clients."""

import asyncio
import contextlib
import json
import logging
import os
import socket

import responder
import uvicorn
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_MESSAGE = 100_000  # Characters in one message; more is closed with 1009.
OUTBOX_SIZE = 100  # Messages a member may fall behind before it is dropped.
CLOSE_TIMEOUT = 5  # Seconds to wait for a close frame to get through.

log = logging.getLogger("chatroom")
api = responder.API(ws_idle_timeout=300)  # Silent for 5 minutes: closed, 1001.


class Member:
    """One connection, with a bounded outbox that its own task sends from."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_SIZE)
        self.stopped = asyncio.Event()  # Set when the server ends the connection.
        self.close_code: int | None = None  # None: the client left by itself.
        self.closed = asyncio.Event()  # Set when its handler has finished.

    def deliver(self, text: str) -> None:
        """Queue text without waiting; a member too far behind is stopped."""
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.stop(1008)

    def stop(self, code: int) -> None:
        self.close_code = code
        self.stopped.set()

    async def speak(self, room: str, text: str) -> None:
        """Pass on what this member said: here, to the members of its room."""
        broadcast(room, {"type": "message", "text": text})

    async def send_forever(self) -> None:
        while True:
            await self.ws.send_text(await self.outbox.get())


rooms: dict[str, set[Member]] = {}


def join(room: str, member: Member) -> None:
    if room not in rooms:
        log.info("room %r opened", room)
    rooms.setdefault(room, set()).add(member)


def leave(room: str, member: Member) -> None:
    rooms[room].discard(member)
    if not rooms[room]:
        del rooms[room]  # The last one out: nothing is left behind.
        log.info("room %r closed", room)


def broadcast(room: str, event: dict) -> None:
    text = json.dumps(event)
    for member in list(rooms.get(room, ())):  # A copy: members may leave.
        member.deliver(text)


async def receive_messages(room: str, member: Member) -> None:
    """Read until the client leaves or breaks the protocol."""
    while True:
        message = await member.ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            member.stop(1003)  # Bytes on a text protocol: unsupported data.
            return
        if len(text) > MAX_MESSAGE:
            member.stop(1009)  # Message too big.
            return
        try:
            event = json.loads(text)
            if event.get("type") == "ping":  # A heartbeat: answer the sender.
                member.deliver(json.dumps({"type": "pong"}))
                continue
            said = event["text"]
        except (ValueError, AttributeError, TypeError, KeyError):
            member.deliver(json.dumps({"type": "error", "error": "expected JSON"}))
            continue  # One bad message is answered, not fatal.
        await member.speak(room, str(said))
        await asyncio.sleep(0)  # Let the writers run: a burst cannot starve them.


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    await ws.accept()
    await take_part(room, Member(ws))


async def take_part(room: str, member: Member) -> None:
    """Serve an accepted member until it leaves or is stopped, then clean up."""
    join(room, member)
    tasks = [
        asyncio.create_task(receive_messages(room, member)),
        asyncio.create_task(member.send_forever()),
        asyncio.create_task(member.stopped.wait()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        leave(room, member)
    try:
        for task in done:
            error = task.exception()
            if error and not isinstance(error, WebSocketDisconnect):
                raise error  # Idle (TimeoutError): 1001. A bug: 1011, and logged.
        if member.close_code is not None:
            log.info("closing a member of %r with %d", room, member.close_code)
            await close(member)
    finally:
        member.closed.set()


async def close(member: Member) -> None:
    """Send the close frame, unless the client has stopped reading for good."""
    with contextlib.suppress(TimeoutError):  # Its buffers stayed full: give up.
        await asyncio.wait_for(member.ws.close(member.close_code), CLOSE_TIMEOUT)


class Server(uvicorn.Server):
    """Uvicorn, but clients hear 1001 (going away) when it stops."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        members = [member for room in rooms.values() for member in room]
        for member in members:
            member.stop(1001)
        if members:  # Each handler closes its own connection, then says so.
            await asyncio.wait([asyncio.create_task(m.closed.wait()) for m in members])
        await super().shutdown(sockets)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "5042"))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how it stops.
        Server(uvicorn.Config(api, host="127.0.0.1", port=port)).run()
