"""The rooms of chatroom.py, one room across every process, through Redis."""

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import responder
from chatroom import (
    Member,
    address,
    broadcast,
    connections,
    counted,
    refused,
    rooms,
    run,
    take_part,
)
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from starlette.websockets import WebSocket

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
PORT = int(os.environ.get("PORT", "5042"))
RETRIES = 3  # Times redis-py retries one command, reconnecting, before it raises.
BACKOFF_CAP = 1.0  # Seconds: the longest wait between two attempts to reconnect.
PUBLISH_TIMEOUT = 1.0  # Seconds before a sender hears "not confirmed".
HEARTBEAT = 1.0  # Seconds between the messages each process sends itself.
SILENCE = 3.0  # Seconds without one of them: Redis counts as not answering.

LOST = "The servers lost touch with each other: messages may be late or lost."
BACK = "The servers are in touch again: messages sent meanwhile may be missing."
MISSED = "The servers reconnected: you may have missed messages."
NOT_CONFIRMED = "not confirmed: your message may or may not have been delivered"

log = logging.getLogger("chatroom_redis")


def channel(room: str) -> str:
    return f"chat:{room}"


class Relay:
    """One process's link to Redis: one pub/sub connection, one reader task."""

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(
            url,
            decode_responses=True,
            retry=Retry(ExponentialBackoff(cap=BACKOFF_CAP, base=0.1), RETRIES),
            socket_connect_timeout=PUBLISH_TIMEOUT,
            socket_timeout=PUBLISH_TIMEOUT,
        )
        self.pubsub = self.redis.pubsub()
        self.heartbeat_channel = f"heartbeat:{uuid.uuid4()}"  # This process's own.
        self.members: Counter[str] = Counter()  # Local members of each room.
        self.confirmed: set[str] = set()  # Channels Redis confirmed subscribing to.
        self.confirmation = asyncio.Event()  # Set, and replaced, at each one.
        self.lock = asyncio.Lock()  # One change of subscriptions at a time.
        self.tasks: set[asyncio.Task] = set()
        self.healthy = True
        self.last_heard = 0.0

    async def publish(self, room: str, text: str) -> None:
        await self.redis.publish(channel(room), text)

    @contextlib.asynccontextmanager
    async def following(self, room: str) -> AsyncIterator[None]:
        """Subscribe while the room has members here; wait (a little) for it."""
        self.members[room] += 1
        self.update_soon()
        with contextlib.suppress(TimeoutError):  # Redis is down: join anyway.
            await asyncio.wait_for(self.subscribed(channel(room)), PUBLISH_TIMEOUT)
        try:
            yield
        finally:
            self.members[room] -= 1
            if not self.members[room]:
                del self.members[room]
                self.update_soon()

    async def subscribed(self, name: str) -> None:
        while name not in self.confirmed:
            await self.confirmation.wait()

    def update_soon(self) -> None:
        task = asyncio.create_task(self.update_subscriptions())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def update_subscriptions(self) -> None:
        """Subscribe to the rooms with local members, and to no other room."""
        async with self.lock:
            connection = self.pubsub.connection
            if connection is None or not connection.is_connected:
                return  # The reader updates them after it reconnects.
            wanted = {channel(room) for room in self.members}
            have = set(self.pubsub.channels) - self.pubsub.pending_unsubscribe_channels
            have.discard(self.heartbeat_channel)
            with contextlib.suppress(RedisError):  # The reader will retry.
                if wanted - have:
                    await self.pubsub.subscribe(*(wanted - have))
                if have - wanted:
                    await self.pubsub.unsubscribe(*(have - wanted))

    async def read(self) -> None:
        """Hand what Redis publishes to local outboxes; reconnect when it fails."""
        delay = 0.1
        while True:
            try:
                async with self.lock:
                    if not self.pubsub.subscribed:
                        await self.pubsub.subscribe(self.heartbeat_channel)
                while True:  # timeout=None: wait as long as it takes.
                    self.handle(await self.pubsub.get_message(timeout=None))
                    delay = 0.1
                    await asyncio.sleep(0)  # Let the writers run between messages.
            except RedisError as error:  # Not CancelledError: that ends the task.
                log.warning("Redis: %s; reconnecting in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, BACKOFF_CAP)

    def handle(self, message: dict) -> None:
        kind, name = message["type"], message["channel"]
        room = name.removeprefix("chat:")
        if kind == "message":
            if name == self.heartbeat_channel:
                self.heard()
            else:
                broadcast(room, json.loads(message["data"]))
        elif kind == "subscribe":
            log.info("subscribed to %s", name)
            if name in self.confirmed:  # Confirmed a second time: reconnected.
                broadcast(room, {"type": "notice", "text": MISSED})
            self.confirmed.add(name)
            self.confirmation.set()
            self.confirmation = asyncio.Event()
            self.update_soon()  # Rooms may have opened or closed meanwhile.
        else:  # "unsubscribe"
            self.confirmed.discard(name)

    def heard(self) -> None:
        self.last_heard = asyncio.get_running_loop().time()
        if not self.healthy:
            self.healthy = True
            log.info("Redis answers again")
            tell_everyone(BACK)

    async def heartbeat(self) -> None:
        """Publish to ourselves; if it does not come back, Redis is not answering."""
        loop = asyncio.get_running_loop()
        self.last_heard = loop.time()
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for drops a
            # cancellation (Ctrl+C) that lands as the publish returns.
            with contextlib.suppress(RedisError, TimeoutError):
                async with asyncio.timeout(HEARTBEAT):
                    await self.redis.publish(self.heartbeat_channel, "")
            if self.healthy and loop.time() - self.last_heard > SILENCE:
                self.healthy = False
                log.warning("Redis has not answered for %.0f s", SILENCE)
                tell_everyone(LOST)
                # A connection can die without a word, and then waiting on it
                # never ends: drop it, so that the reader connects afresh.
                if self.pubsub.connection:
                    await self.pubsub.connection.disconnect(nowait=True)
            await asyncio.sleep(HEARTBEAT)

    def start(self) -> None:
        for work in (self.read(), self.heartbeat()):
            task = asyncio.create_task(work)
            self.tasks.add(task)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pubsub.aclose()
        await self.redis.aclose()


def tell_everyone(text: str) -> None:
    for room in list(rooms):
        broadcast(room, {"type": "notice", "text": text})


relay = Relay(REDIS_URL)


@contextlib.asynccontextmanager
async def lifespan(app: responder.API) -> AsyncIterator[None]:
    relay.start()
    try:
        yield
    finally:
        await relay.close()


api = responder.API(
    static_dir=Path(__file__).parent / "scaled", lifespan=lifespan, ws_idle_timeout=300
)


class RedisMember(Member):
    """A member whose messages go through Redis, even to its own process."""

    async def speak(self, room: str, text: str) -> None:
        event = json.dumps(self.message(text), ensure_ascii=False)
        try:
            await asyncio.wait_for(self.publish(room, event), PUBLISH_TIMEOUT)
        except (RedisError, TimeoutError):
            self.deliver(json.dumps({"type": "error", "error": NOT_CONFIRMED}))

    async def publish(self, room: str, event: str) -> None:
        await relay.publish(room, event)


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    if refused(ws, room):  # A bad room name, or too many open: chatroom.py's rules.
        await ws.close(1008)
        return
    with counted(connections, address(ws)):
        await ws.accept()
        member = RedisMember(ws)
        if not relay.healthy:  # Joining while Redis does not answer: say so.
            member.deliver(json.dumps({"type": "notice", "text": LOST}))
        async with relay.following(room):
            await take_part(room, member)


if __name__ == "__main__":
    run(api)
