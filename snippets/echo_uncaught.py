"""The echo server without its except clause: what not to do."""

import responder
from starlette.websockets import WebSocket

api = responder.API()


@api.route("/ws", websocket=True)
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    while True:  # Left only by the WebSocketDisconnect of a leaving client.
        text = await ws.receive_text()
        await ws.send_text(f"Echo: {text}")


if __name__ == "__main__":
    api.run()
