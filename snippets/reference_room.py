"""The benchmark's reference: the chat room's protocol on `websockets` alone.

Members of /chat/<room> send {"text": ...}; every member of the room receives
{"type": "message", "text": ...}. No framework, no queue, no task per member:
broadcast() writes each message to every connection that is open.
"""

import asyncio
import contextlib
import json
import os
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

rooms: dict[str, set[ServerConnection]] = {}


async def chatroom(ws: ServerConnection) -> None:
    assert ws.request is not None  # Set once the handshake has succeeded.
    room = ws.request.path.removeprefix("/chat/")
    members = rooms.setdefault(room, set())
    members.add(ws)
    try:
        async for text in ws:
            try:
                said = json.loads(text)["text"]
            except (ValueError, TypeError, KeyError):
                await ws.send(json.dumps({"type": "error", "error": "expected JSON"}))
                continue
            broadcast(members, json.dumps({"type": "message", "text": str(said)}))
    finally:
        members.discard(ws)
        if not members:
            del rooms[room]


async def main(port: int) -> None:
    async with serve(chatroom, "127.0.0.1", port, max_size=100_000) as server:
        print(f"Serving on ws://127.0.0.1:{port}/chat/<room>", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5042"))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how it stops.
        if "--uvloop" in sys.argv[1:]:  # The event loop uvicorn picks when it can.
            import uvloop

            uvloop.run(main(port))
        else:
            asyncio.run(main(port))
