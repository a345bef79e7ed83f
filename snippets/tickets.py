"""The rooms of chatroom.py for clients without cookies: one-time tickets."""

import logging
import os
import secrets
import time

import responder
from chatroom import (
    address,
    connections,
    counted,
    refused,
    run,
    take_part,
)
from chatroom_secure import BAD_NAME, SignedInMember, posted_name
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
    name = await posted_name(req)  # The signed-in room's check of a name.
    if name is None:
        resp.status_code = 400
        resp.media = BAD_NAME
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
    run(api)
