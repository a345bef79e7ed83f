"""The rooms of chatroom.py for clients without cookies: one-time tickets."""

import contextlib
import json
import logging
import os
import secrets
import time

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
from chatroom_secure import NAME, SignedInMember
from starlette.websockets import WebSocket

TICKET_SECONDS = float(os.environ.get("CHAT_TICKET_SECONDS", "10"))
PROTOCOL = "chat"  # The subprotocol the server speaks, and echoes.
tickets: dict[str, tuple[str, float]] = {}  # Ticket: its name, its deadline.
log = logging.getLogger("tickets")
api = responder.API(sessions=False)


@api.route("/ticket", methods=["POST"])
async def issue(req: responder.Request, resp: responder.Response) -> None:
    """Trade credentials, sent in a POST body, for a ticket to connect with."""
    # Anyone may sign in by name here; a real app checks a password first.
    try:
        name = json.loads(await req.content).get("name")
    except (ValueError, AttributeError, RecursionError):
        name = None
    if not isinstance(name, str) or not NAME.fullmatch(name):
        resp.status_code = 400
        resp.media = {"error": "a name of 1 to 30 of a-z, 0-9, _ and -, please"}
        return
    now = time.monotonic()
    for old, (_, deadline) in list(tickets.items()):
        if deadline <= now:
            del tickets[old]  # Never used, and now never will be.
    ticket = secrets.token_urlsafe(32)  # 256 random bits: not to be guessed.
    tickets[ticket] = (name, now + TICKET_SECONDS)
    resp.media = {"ticket": ticket, "seconds": TICKET_SECONDS}


def redeem(ticket: str) -> str | None:
    """The name a ticket was issued to: once, and before its deadline."""
    name, deadline = tickets.pop(ticket, ("", 0.0))  # Gone, whatever follows.
    return name if time.monotonic() < deadline else None


async def join_as(ws: WebSocket, room: str, name: str | None, **accept) -> None:
    if name is None or refused(ws, room):
        log.info("refused: no valid ticket, or chatroom.py's rules")
        await ws.close(1008)  # Before accept: HTTP 403.
        return
    with counted(connections, address(ws)):
        await ws.accept(**accept)
        await take_part(room, SignedInMember(ws, name))


@api.route("/chat/{room}", websocket=True)
async def with_query(ws: WebSocket, room: str) -> None:
    """The ticket in the address: /chat/main?ticket=..."""
    await join_as(ws, room, redeem(ws.query_params.get("ticket", "")))


@api.route("/protocol/{room}", websocket=True)
async def with_subprotocol(ws: WebSocket, room: str) -> None:
    """The ticket as a second subprotocol, after ours: "chat", "ticket.…"."""
    offered = ws.scope["subprotocols"]
    ticket = next((p[7:] for p in offered if p.startswith("ticket.")), "")
    name = redeem(ticket) if PROTOCOL in offered else None
    await join_as(ws, room, name, subprotocol=PROTOCOL)  # Echo the one we speak.


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "5042"))
    config = uvicorn.Config(api, host="127.0.0.1", port=port, ws_max_size=MAX_FRAME)
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run()
