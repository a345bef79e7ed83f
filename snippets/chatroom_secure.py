"""The rooms of chatroom.py, for signed-in users on our own pages only."""

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import time
from pathlib import Path

import responder
from chatroom import (
    Member,
    address,
    connections,
    counted,
    refused,
    run,
    take_part,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.websockets import WebSocket

PORT = int(os.environ.get("PORT", "5042"))
SESSION_SECONDS = int(os.environ.get("CHAT_SESSION_SECONDS", "3600"))
SESSION_ENDED = 4401  # Our close code: expired or signed out, so sign in again.
MAX_SOCKETS = 5  # Open sockets per signed-in name; more are refused.
NAME = re.compile(r"[a-z0-9_-]{1,30}")  # No look-alikes, controls or spaces.
COOKIE = "chat_session"
# The pages that may sign in and open a socket: "scheme://host:port" each.
ORIGINS = os.environ.get(
    "CHAT_ORIGINS", f"http://127.0.0.1:{PORT} http://localhost:{PORT}"
)
ALLOWED_ORIGINS = set(ORIGINS.split())
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_hex(32))"'
log = logging.getLogger("chatroom")


def signing_keys(setting: str) -> list[str]:
    """CHAT_SECRET: space-separated keys, newest first, each 32+ bytes in hex."""
    if not setting:  # Sessions then end whenever this process does.
        return [secrets.token_hex(32)]
    keys = setting.split()
    for key in keys:
        with contextlib.suppress(ValueError):
            if len(bytes.fromhex(key)) >= 32:
                continue
        raise SystemExit(
            "CHAT_SECRET: each key must be at least 32 random bytes, in hex"
            f" (64 digits).\nMake one with: {MAKE_A_KEY}"
        )
    return keys


# itsdangerous signs with the last key of its list and accepts any of them.
KEYS = signing_keys(os.environ.get("CHAT_SECRET", ""))
signer = URLSafeTimedSerializer(KEYS[::-1], salt="chat-session")
valid_after: dict[str, float] = {}  # Sessions signed earlier are revoked.
sockets: dict[str, set[Member]] = {}  # The open connections of each name.


def session(cookie: str) -> tuple[str, float] | None:
    """The name and end time of a valid session cookie, else None."""
    try:  # Missing, forged or expired: BadSignature.
        name, since = signer.loads(cookie, max_age=SESSION_SECONDS)
    except BadSignature:
        return None
    if since <= valid_after.get(name, 0):  # Signed out after it was signed.
        return None
    return name, since + SESSION_SECONDS


class SignedInMember(Member):
    """A member whose messages carry the name it signed in with."""

    def __init__(self, ws: WebSocket, name: str) -> None:
        super().__init__(ws)
        self.name = name

    def message(self, text: str) -> dict:
        return {**super().message(text), "from": self.name}  # Set by us only.


def from_our_pages(req: responder.Request) -> bool:
    """No Origin: not sent by a browser page. Otherwise, one of ours."""
    origin = req.headers.get("origin")
    return origin is None or origin in ALLOWED_ORIGINS


def set_session(req: responder.Request, resp: responder.Response, value: str) -> None:
    """Set the cookie, or end it with "", with every flag spelled out."""
    resp.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS if value else 0,
        httponly=True,  # Page scripts cannot read it.
        samesite="lax",  # Not sent with handshakes other sites' pages start.
        secure=req.url.scheme == "https",  # Over HTTPS, never sent in clear.
    )


# The session is our own signed cookie, so Responder's sessions are off.
api = responder.API(
    static_dir=Path(__file__).parent / "secure", ws_idle_timeout=300, sessions=False
)


BAD_NAME = {"error": "a name of 1 to 30 of a-z, 0-9, _ and -, please"}


async def posted_name(req: responder.Request) -> str | None:
    """The name a sign-in body gives, if it is JSON and a name we allow."""
    try:
        name = json.loads(await req.content).get("name")
    except (ValueError, AttributeError, RecursionError):  # Or nested too deep.
        return None
    return name if isinstance(name, str) and NAME.fullmatch(name) else None


@api.route("/login", methods=["POST"])
async def login(req: responder.Request, resp: responder.Response) -> None:
    # Anyone may sign in by name here; a real app checks a password first.
    if not from_our_pages(req):
        resp.status_code = 403  # Another site's page: a login CSRF.
        return
    if req.mimetype.split(";")[0].strip().lower() != "application/json":
        resp.status_code = 415  # A plain HTML form cannot send this type.
        return
    name = await posted_name(req)
    if name is None:
        resp.status_code = 400
        resp.media = BAD_NAME
        return
    set_session(req, resp, signer.dumps([name, time.time()]))
    resp.media = {"name": name}


@api.route("/session")
async def whoami(req: responder.Request, resp: responder.Response) -> None:
    """Tell the page whether its cookie still holds a session."""
    found = session(req.cookies.get(COOKIE, ""))
    resp.status_code = 200 if found else 401
    resp.media = {"name": found[0] if found else None}


@api.route("/logout", methods=["POST"])
async def logout(req: responder.Request, resp: responder.Response) -> None:
    """Revoke every session of this name, and close its sockets."""
    if not from_our_pages(req):
        resp.status_code = 403
        return
    found = session(req.cookies.get(COOKIE, ""))
    if found:
        valid_after[found[0]] = time.time()
        for member in sockets.get(found[0], ()):
            member.stop(SESSION_ENDED)
    set_session(req, resp, "")
    resp.media = {"name": None}


@api.before_request(websocket=True)
async def check_handshake(ws: WebSocket) -> None:
    """Refuse, before accept() and so with HTTP 403, what we cannot trust."""
    origin = ws.headers.get("origin")  # Browsers always send it.
    if origin is not None and origin not in ALLOWED_ORIGINS:
        log.info("refused: origin %r is not allowed", origin)
        await ws.close(1008)  # Somebody else's page, with our user's cookie.
        return
    found = session(ws.cookies.get(COOKIE, ""))
    if found is None:
        log.info("refused: no valid session")
        await ws.close(1008)
        return
    ws.state.name, ws.state.expires = found


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    if refused(ws, room):  # A bad room name, or too many open: chatroom.py's rules.
        await ws.close(1008)
        return
    mine = sockets.setdefault(ws.state.name, set())
    if len(mine) >= MAX_SOCKETS:
        log.info("refused: %r has %d sockets open", ws.state.name, len(mine))
        await ws.close(1008)  # Still before accept: HTTP 403.
        return
    member = SignedInMember(ws, ws.state.name)
    mine.add(member)
    # A session that ends while connected is closed after accept.
    seconds_left = ws.state.expires - time.time()
    expiry = asyncio.get_running_loop().call_later(
        seconds_left, member.stop, SESSION_ENDED
    )
    try:
        with counted(connections, address(ws)):
            await ws.accept()
            await take_part(room, member)
    finally:
        expiry.cancel()
        mine.discard(member)
        if not mine:
            del sockets[ws.state.name]


if __name__ == "__main__":
    run(api)
