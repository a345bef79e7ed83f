"""One route per kind of message: text, JSON and binary."""

import hashlib
import json
from typing import Any, Literal

import responder
from starlette.websockets import WebSocket

api = responder.API()


async def receive(ws: WebSocket, kind: Literal["text", "bytes"]) -> Any:
    """The next message's text or bytes; None once the conversation is over.

    It is over when the client leaves, or when it sends the other kind of
    frame: that is closed with 1003 (unsupported data).
    """
    message = await ws.receive()  # A dict; "text" or "bytes" holds the payload.
    if message["type"] == "websocket.disconnect":
        return None  # The client left.
    if message.get(kind) is None:
        await ws.close(code=1003)
        return None
    return message[kind]


@api.route("/text", websocket=True)
async def count_words(ws: WebSocket) -> None:
    await ws.accept()
    while (text := await receive(ws, "text")) is not None:
        await ws.send_text(f"{len(text.split())} words")


@api.route("/json", websocket=True)
async def acknowledge(ws: WebSocket) -> None:
    await ws.accept()
    while (text := await receive(ws, "text")) is not None:
        try:
            reply = {"type": "ack", "id": json.loads(text)["id"]}
        except (ValueError, TypeError, KeyError):  # Not JSON, not an object, no id.
            reply = {"type": "error", "error": 'expected a JSON object with an "id"'}
        await ws.send_json(reply)


@api.route("/bytes", websocket=True)
async def checksum(ws: WebSocket) -> None:
    await ws.accept()
    while (data := await receive(ws, "bytes")) is not None:
        await ws.send_bytes(hashlib.sha256(data).digest())


if __name__ == "__main__":
    api.run()
