"""A chat room: each text a client sends goes to every connected client."""

from pathlib import Path

import responder
from starlette.websockets import WebSocket, WebSocketDisconnect

# Resolve against this file, so the page is found from any working directory.
api = responder.API(static_dir=Path(__file__).parent / "static")
clients: set[WebSocket] = set()


async def broadcast(text: str) -> None:
    for client in list(clients):  # A copy: the set may change while we await.
        try:
            await client.send_text(text)
        except WebSocketDisconnect:
            clients.discard(client)  # That client is gone; keep serving the rest.


@api.route("/chat", websocket=True)
async def chat(ws: WebSocket) -> None:
    await ws.accept()
    clients.add(ws)
    try:
        while True:
            await broadcast(await ws.receive_text())
    except WebSocketDisconnect:
        pass  # The client left.
    finally:
        clients.discard(ws)  # Runs however the handler ends.


if __name__ == "__main__":
    api.run()
