"""Responder's ws_idle_timeout, and a timeout of your own kept apart from it."""

import asyncio
import contextlib
import logging
import os

import responder
from starlette.websockets import WebSocket, WebSocketDisconnect

IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "300"))
LOOKUP_SECONDS = float(os.environ.get("LOOKUP_SECONDS", "2"))  # A slow backend.
LOOKUP_TIMEOUT = 1.0  # Seconds we wait for it.

log = logging.getLogger("idle")
api = responder.API(ws_idle_timeout=IDLE_SECONDS)


@api.route("/listen", websocket=True)
async def listen(ws: WebSocket) -> None:
    """Answers "ping" with "pong"; a client that only listens is cut all the same."""
    await ws.accept()
    with contextlib.suppress(WebSocketDisconnect):  # The client left.
        while True:
            if await ws.receive_text() == "ping":  # Each message restarts the timer.
                await ws.send_text("pong")


async def lookup() -> str:
    await asyncio.sleep(LOOKUP_SECONDS)  # Stands for Redis, a database, an API.
    return "found"


@api.route("/lookup", websocket=True)
async def lookup_unguarded(ws: WebSocket) -> None:
    await ws.accept()
    async with asyncio.timeout(LOOKUP_TIMEOUT):  # Its TimeoutError escapes...
        text = await lookup()
    await ws.send_text(text)  # ...so the client hears 1001, and nothing is logged.


@api.route("/lookup-guarded", websocket=True)
async def lookup_guarded(ws: WebSocket) -> None:
    await ws.accept()
    try:
        async with asyncio.timeout(LOOKUP_TIMEOUT):
            text = await lookup()
    except TimeoutError:  # Ours, handled here: never mistaken for an idle client.
        log.warning("lookup took over %s s", LOOKUP_TIMEOUT)
        await ws.close(1013, "lookup timed out")  # 1013: try again later.
        return
    await ws.send_text(text)
    await ws.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    api.run()
