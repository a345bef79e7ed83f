"""An echo server: every text message comes back prefixed with "Echo: "."""

import responder
from starlette.websockets import WebSocket, WebSocketDisconnect

api = responder.API()


@api.route("/ws", websocket=True)
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            text = await ws.receive_text()
            await ws.send_text(f"Echo: {text}")
    except WebSocketDisconnect:
        pass  # The client left: a normal end, not an error.


if __name__ == "__main__":
    api.run()  # http://127.0.0.1:5042, or the port in $PORT
