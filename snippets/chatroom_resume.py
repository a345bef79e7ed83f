"""The Redis room of chatroom_redis.py, with message ids, history and resume."""

import contextlib
import json
import logging
import os
import re
from collections import deque
from pathlib import Path

import responder
import uvicorn
from chatroom import (
    MAX_FRAME,
    Server,
    address,
    connections,
    counted,
    refused,
    take_part,
)
from chatroom_redis import PORT, RedisMember, channel, lifespan, relay
from redis.exceptions import RedisError
from starlette.websockets import WebSocket

HISTORY = int(os.environ.get("CHAT_HISTORY", "1000"))  # Messages kept, about.
ON_JOIN = 50  # Messages a newcomer is shown first.
BAD_SINCE = 4000  # Close code: `since` is not an id, or one Redis has not reached.
TRY_AGAIN = 1013  # Close code: Redis did not answer; reconnect later.
STREAM_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")  # "1764201600000-0"
INCOMPLETE = json.dumps(
    {"type": "incomplete", "text": "Some messages since you left are gone."}
)

# XADD then PUBLISH, in one script: Redis runs it whole, so every message is
# both kept and published, or neither, and they get the same id, in the same order.
APPEND = relay.redis.register_script("""
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2])
local event = cjson.decode(ARGV[2])
event['id'] = id
redis.call('PUBLISH', ARGV[3], cjson.encode(event))
return id
""")

log = logging.getLogger("chatroom_resume")


def history(room: str) -> str:
    return f"history:{room}"


def id_of(text: str) -> tuple[int, int]:
    """A stream id as a pair that sorts as Redis does; ValueError if it is not one."""
    if not STREAM_ID.fullmatch(text):
        raise ValueError(f"not a stream id: {text!r}")
    milliseconds, sequence = text.split("-")
    return int(milliseconds), int(sequence)


class ResumeMember(RedisMember):
    """A member that first catches up from the stream, then goes live."""

    def __init__(self, ws: WebSocket, room: str, since: str | None) -> None:
        super().__init__(ws)
        self.room, self.since = room, since
        self.last: tuple[int, int] | None = None  # Id of the last replayed message.
        self.live = False  # True once a live message came after the replay.

    async def publish(self, room: str, event: str) -> None:
        await APPEND(keys=[history(room)], args=[HISTORY, event, channel(room)])

    def deliver(self, text: str, size: int | None = None) -> None:
        if self.last is None or self.live or not self.replayed(text):
            super().deliver(text, size)  # Replaying (queued for later), or new.

    def replayed(self, text: str) -> bool:
        """Whether the replay sent this already. The first newer one ends the checks."""
        event = json.loads(text)
        if event["type"] != "message":
            return False
        if id_of(event["id"]) <= self.last:
            return True
        self.live = True  # Redis publishes in id order: all later ones are newer.
        return False

    async def send_forever(self) -> None:
        try:
            self.last = await self.replay()
        except RedisError:
            self.stop(TRY_AGAIN)
            return
        except ValueError:
            self.stop(BAD_SINCE)
            return
        queued, self.outbox, self.queued = self.outbox, deque(), 0
        for text, size in queued:  # What came live meanwhile, minus duplicates.
            self.deliver(text, size)
        await super().send_forever()

    async def replay(self) -> tuple[int, int]:
        """Send what was missed, straight to the socket; return the last id sent."""
        key = history(self.room)
        if self.since is None:
            entries = (await relay.redis.xrevrange(key, count=ON_JOIN))[::-1]
            last = (0, 0)
        else:
            last = id_of(self.since)
            seconds, microseconds = await relay.redis.time()
            if last[0] > seconds * 1000 + microseconds // 1000:
                raise ValueError(f"an id from the future: {self.since}")
            entries = await relay.redis.xrange(key, min=self.since)
            if entries and entries[0][0] == self.since:
                entries = entries[1:]  # Still there: nothing after it is missing.
            else:  # Trimmed away, or Redis restarted without it.
                await self.ws.send_text(INCOMPLETE)
        for entry_id, fields in entries:
            event = json.loads(fields["event"]) | {"id": entry_id}
            await self.ws.send_text(json.dumps(event, ensure_ascii=False))
            last = id_of(entry_id)
        return last


api = responder.API(
    static_dir=Path(__file__).parent / "resume",
    lifespan=lifespan,
    ws_idle_timeout=300,
    sessions=False,
)


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    if refused(ws, room):  # chatroom.py's rules, as before.
        await ws.close(1008)
        return
    with counted(connections, address(ws)):
        await ws.accept()
        member = ResumeMember(ws, room, ws.query_params.get("since"))
        async with relay.following(room):
            await take_part(room, member)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how it stops.
        config = uvicorn.Config(api, host="127.0.0.1", port=PORT, ws_max_size=MAX_FRAME)
        Server(config).run()
