"""Chat rooms that survive slow, dead and hostile clients."""

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path

import responder
import uvicorn
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_MESSAGE = 10_000  # Characters in one message; more is closed with 1009.
MAX_FRAME = 4 * MAX_MESSAGE  # Bytes: UTF-8 takes up to 4 for a character.
OUTBOX_BYTES = 512 * 1024  # UTF-8 a member may fall behind by; then 1008.
RATE = float(os.environ.get("CHAT_RATE", "5"))  # Messages a second, per connection,
BURST = int(2 * RATE)  # and at once: two seconds' worth.
MAX_CONNECTIONS = 500  # Open at once, in all: keep it well under `ulimit -n`.
MAX_PER_ADDRESS = 20  # Open at once from one client address.
ROOM_NAME = re.compile(r"[a-z0-9-]{1,32}")  # Any other name is refused.
CLOSE_TIMEOUT = 5  # Seconds to wait for a close frame to get through.

log = logging.getLogger("chatroom")
# The room page at /static/index.html. Silent for 5 minutes: closed, 1001.
# No cookie sessions: the room has no use for them (Responder's default is on).
api = responder.API(
    static_dir=Path(__file__).parent / "room", ws_idle_timeout=300, sessions=False
)

PONG = json.dumps({"type": "pong"})
BAD_INPUT = json.dumps({"type": "error", "error": "expected JSON"})
TOO_FAST = json.dumps({"type": "error", "error": "too fast: message dropped"})


class Member:
    """One connection, with a bounded outbox that its own task sends from."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.outbox: deque[tuple[str, int]] = deque()  # Texts, with their bytes.
        self.queued = 0  # UTF-8 bytes in the outbox: at most OUTBOX_BYTES.
        self.wakeup: asyncio.Future[None] | None = None  # What the sender awaits.
        self.tokens, self.refilled = float(BURST), time.monotonic()
        self.stopped = asyncio.Event()  # Set when the server ends the connection.
        self.close_code: int | None = None  # None: the client left by itself.
        self.closed = asyncio.Event()  # Set when its handler has finished.

    def deliver(self, text: str, size: int | None = None) -> None:
        """Queue text without waiting; a member too far behind is stopped."""
        if size is None:  # broadcast() measures once for all its members.
            size = len(text.encode())
        if self.queued + size > OUTBOX_BYTES:
            self.stop(1008)
            return
        self.outbox.append((text, size))
        self.queued += size
        if self.wakeup and not self.wakeup.done():  # The sender waits: wake it.
            self.wakeup.set_result(None)

    def message(self, text: str) -> dict:
        """What this member said, as the event the room sends."""
        return {"type": "message", "text": text}

    async def speak(self, room: str, text: str) -> None:
        """Pass on what this member said: here, to the members of its room."""
        broadcast(room, self.message(text))

    def stop(self, code: int) -> None:
        self.close_code = code
        self.stopped.set()

    def may_send(self) -> bool:
        """Take a token: they refill at RATE a second, up to BURST of them."""
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * RATE)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.send_queued()  # Everything queued, in one wake-up.
            # A bare future, made anew for each wait, wakes this task with less
            # work than an asyncio.Event: work done per member, per message.
            self.wakeup = loop.create_future()
            await self.wakeup

    async def send_queued(self) -> None:
        while self.outbox:
            text, size = self.outbox.popleft()
            await self.ws.send_text(text)
            self.queued -= size


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
    text = json.dumps(event, ensure_ascii=False)  # "😀", not "\ud83d\ude00".
    size = len(text.encode())  # Encoded once, for every member.
    for member in list(rooms.get(room, ())):  # A copy: members may leave.
        member.deliver(text, size)


def parse(text: str) -> dict | None:
    """A ping, or {"text": ...} with a string; None for anything else."""
    try:
        event = json.loads(text)
    except RecursionError:  # Nested a thousand deep: bad JSON, one log line.
        log.warning("refused JSON nested too deeply")
        return None
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("type") == "ping":
        return event
    said = event.get("text")
    if not isinstance(said, str):
        return None
    try:
        said.encode()  # A lone surrogate ("\ud800") is not text.
    except UnicodeEncodeError:
        return None
    return event


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
        if not member.may_send():
            member.deliver(TOO_FAST)  # Dropped, and the sender is told.
            continue
        event = parse(text)
        if event is None:
            member.deliver(BAD_INPUT)  # One bad message is answered, not fatal.
        elif event.get("type") == "ping":  # A heartbeat: answer the sender.
            member.deliver(PONG)
        else:
            await member.speak(room, event["text"])
            await asyncio.sleep(0)  # Let the writers run: a burst cannot starve them.


connections: Counter[str] = Counter()  # Open connections, by client address.


def address(ws: WebSocket) -> str:
    return ws.client.host if ws.client else ""


def refused(ws: WebSocket, room: str) -> bool:
    """Whether to refuse a handshake: a bad room name, or too many open."""
    return (
        not ROOM_NAME.fullmatch(room)
        or connections.total() >= MAX_CONNECTIONS
        or connections[address(ws)] >= MAX_PER_ADDRESS
    )


@contextlib.contextmanager
def counted(counter: Counter[str], key: str) -> Iterator[None]:
    """Count one more open connection for key while the block runs."""
    counter[key] += 1
    try:
        yield
    finally:
        counter[key] -= 1
        if not counter[key]:
            del counter[key]  # An address with nothing open is forgotten.


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    if refused(ws, room):
        await ws.close(1008)  # Before accept: the client gets HTTP 403.
        return
    with counted(connections, address(ws)):
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
        try:
            await asyncio.wait_for(member.ws.close(member.close_code), CLOSE_TIMEOUT)
        except WebSocketDisconnect:  # It dropped the connection meanwhile.
            log.info("a member went away while being closed")


class Server(uvicorn.Server):
    """Uvicorn, but clients hear 1001 (going away) when it stops."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        members = [member for room in rooms.values() for member in room]
        for member in members:
            member.stop(1001)
        if members:  # Each handler closes its own connection, then says so.
            await asyncio.wait([asyncio.create_task(m.closed.wait()) for m in members])
        await super().shutdown(sockets)


def run(app: responder.API) -> None:
    """Serve app on PORT (5042 if unset) until Ctrl+C; every room here runs so."""
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "5042"))
    # Frames over MAX_FRAME bytes are refused by uvicorn, from the header alone.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws_max_size=MAX_FRAME)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how it stops.
        Server(config).run()


if __name__ == "__main__":
    run(api)
