"""The rooms of chatroom.py, for signed-in users on our own pages only."""

import asyncio
import contextlib
import logging
import os
import secrets
import time
from pathlib import Path

import responder
import uvicorn
from chatroom import Member, Server, take_part
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.websockets import WebSocket

PORT = int(os.environ.get("PORT", "5042"))
SESSION_SECONDS = int(os.environ.get("CHAT_SESSION_SECONDS", "3600"))
COOKIE = "chat_session"
# The pages that may open a socket: "scheme://host:port", space-separated.
ORIGINS = os.environ.get(
    "CHAT_ORIGINS", f"http://127.0.0.1:{PORT} http://localhost:{PORT}"
)
ALLOWED_ORIGINS = set(ORIGINS.split())
# A fixed CHAT_SECRET keeps sessions valid across restarts and workers.
SECRET = os.environ.get("CHAT_SECRET") or secrets.token_hex(32)
signer = URLSafeTimedSerializer(SECRET, salt="chat-session")

api = responder.API(static_dir=Path(__file__).parent / "secure", ws_idle_timeout=300)


@api.route("/login", methods=["POST"])
async def login(req: responder.Request, resp: responder.Response) -> None:
    # Anyone may sign in by name here; a real app checks a password first.
    data = await req.media("json")  # Not JSON at all: Responder answers 400.
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not 0 < len(name) <= 30:
        resp.status_code = 400
        resp.media = {"error": "a name of 1 to 30 characters, please"}
        return
    resp.set_cookie(COOKIE, signer.dumps(name), max_age=SESSION_SECONDS)
    resp.media = {"name": name}


@api.before_request(websocket=True)
async def check_handshake(ws: WebSocket) -> None:
    """Refuse, before accept() and so with HTTP 403, what we cannot trust."""
    origin = ws.headers.get("origin")  # Browsers always send it.
    if origin is not None and origin not in ALLOWED_ORIGINS:
        await ws.close(1008)  # Somebody else's page, with our user's cookie.
        return
    try:
        _, signed = signer.loads(
            ws.cookies.get(COOKIE, ""), max_age=SESSION_SECONDS, return_timestamp=True
        )
    except BadSignature:  # Missing, forged or expired.
        await ws.close(1008)
        return
    ws.state.expires = signed.timestamp() + SESSION_SECONDS


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    await ws.accept()
    member = Member(ws)
    # A session that ends while connected is closed after accept: with 1008.
    seconds_left = ws.state.expires - time.time()
    expiry = asyncio.get_running_loop().call_later(seconds_left, member.stop, 1008)
    try:
        await take_part(room, member)
    finally:
        expiry.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how it stops.
        Server(uvicorn.Config(api, host="127.0.0.1", port=PORT)).run()
