"""A before-request hook that turns away WebSocket clients without a token."""

import os
import secrets

import responder
from starlette.websockets import WebSocket

api = responder.API()
TOKEN = os.environ.get("CHAT_TOKEN", "s3cret")


@api.before_request(websocket=True)
async def require_token(ws: WebSocket) -> None:
    token = ws.query_params.get("token", "")
    if not secrets.compare_digest(token.encode(), TOKEN.encode()):
        await ws.close(code=1008)  # Before accept(): the client gets HTTP 403.
    # Never accept() here: the route accepts, and a second accept() fails.


@api.route("/private", websocket=True)
async def private(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text("Welcome in.")
    await ws.close()


if __name__ == "__main__":
    api.run()
