"""The rooms of chatroom.py, refusing with a reason the client can read."""

import contextlib
import logging
import os

import uvicorn
from chatroom import (
    MAX_FRAME,
    ROOM_NAME,
    Member,
    Server,
    address,
    api,
    connections,
    counted,
    refused,
    take_part,
)
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket


def refusal(ws: WebSocket, room: str) -> tuple[int, str] | None:
    """Why to refuse a handshake, as an HTTP status and a text; None: welcome."""
    if not ROOM_NAME.fullmatch(room):
        return 404, "no such room"
    if refused(ws, room):  # The name is fine, so it is a cap.
        return 503, "too many connections"
    return None


async def serve(ws: WebSocket, room: str) -> None:
    with counted(connections, address(ws)):
        await ws.accept()
        await take_part(room, Member(ws))


@api.route("/deny/{room}", websocket=True)
async def refuse_with_http(ws: WebSocket, room: str) -> None:
    """A: refuse the handshake with a real HTTP response, status and body."""
    if found := refusal(ws, room):
        status, text = found
        await ws.send_denial_response(PlainTextResponse(text, status_code=status))
        return
    await serve(ws, room)


@api.route("/close/{room}", websocket=True)
async def refuse_with_close(ws: WebSocket, room: str) -> None:
    """B: accept the handshake, then close with 4000 + the HTTP status."""
    if found := refusal(ws, room):
        status, text = found
        await ws.accept()
        await ws.close(4000 + status, text)
        return
    await serve(ws, room)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "5042"))
    config = uvicorn.Config(api, host="127.0.0.1", port=port, ws_max_size=MAX_FRAME)
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run()
