"""The chat room of chat.py, where a slow member no longer holds up the others."""

import asyncio
import contextlib
from pathlib import Path

import responder
from starlette.websockets import WebSocket, WebSocketDisconnect

OUTBOX_SIZE = 100  # Messages a member may fall behind; after that it misses some.

api = responder.API(static_dir=Path(__file__).parent / "static")
outboxes: dict[WebSocket, asyncio.Queue[str]] = {}


def broadcast(text: str) -> None:
    for outbox in outboxes.values():  # Nothing here awaits: no one comes or goes.
        # put_nowait never waits; a member OUTBOX_SIZE behind misses this one.
        with contextlib.suppress(asyncio.QueueFull):
            outbox.put_nowait(text)


async def send_from(outbox: asyncio.Queue[str], ws: WebSocket) -> None:
    """The member's sender: the only place that waits for its connection."""
    try:
        while True:
            await ws.send_text(await outbox.get())
    except WebSocketDisconnect:
        pass  # The client left; its handler notices it too.


@api.route("/chat", websocket=True)
async def chat(ws: WebSocket) -> None:
    await ws.accept()
    outboxes[ws] = outbox = asyncio.Queue(OUTBOX_SIZE)
    sender = asyncio.create_task(send_from(outbox, ws))  # Runs alongside us.
    try:
        while True:
            broadcast(await ws.receive_text())
    except WebSocketDisconnect:
        pass  # The client left.
    finally:
        del outboxes[ws]
        sender.cancel()  # Stop the sender, wherever it is waiting.


if __name__ == "__main__":
    api.run()
