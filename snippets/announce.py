"""The room of chatroom.py, posted to from outside: HTTP, a timer, a thread."""

import asyncio
import contextlib
import os

import responder
from chatroom import MAX_MESSAGE, api, broadcast, parse, rooms, run

TICK_SECONDS = float(os.environ.get("CHAT_TICK_SECONDS", "60"))


@api.route("/announce/{room}", methods=["POST"])
async def announce(req: responder.Request, resp: responder.Response, room: str) -> None:
    """Post {"text": ...} into a room, and answer without waiting for anyone."""
    event = parse((await req.content).decode(errors="replace"))
    if event is None or event.get("type") == "ping" or len(event["text"]) > MAX_MESSAGE:
        resp.status_code = 400
        resp.media = {"error": 'expected {"text": ...}, up to 10000 characters'}
        return
    members = len(rooms.get(room, ()))
    broadcast(room, {"type": "announcement", "text": event["text"]})  # Queued.
    resp.media = {"members": members}


async def count_members() -> None:
    """Every TICK_SECONDS, tell each room how many members it has."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        for room, members in list(rooms.items()):
            broadcast(room, {"type": "members", "count": len(members)})


@api.on_event("startup")
async def start_counting() -> None:
    api.state.loop = asyncio.get_running_loop()  # For post_threadsafe().
    api.state.counter = asyncio.create_task(count_members())


@api.on_event("shutdown")
async def stop_counting() -> None:
    api.state.counter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await api.state.counter


def post_threadsafe(room: str, event: dict) -> None:
    """broadcast() from any other thread: the event loop's thread runs it."""
    api.state.loop.call_soon_threadsafe(broadcast, room, event)


if __name__ == "__main__":
    run(api)
