"""Each stage of a connection's life, as the server sees it."""

import logging
import os

import responder
from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger("lifecycle")
# A client silent for 30 seconds is closed with 1001 (going away).
api = responder.API(ws_idle_timeout=30)


@api.route("/lifecycle", websocket=True)
async def lifecycle(ws: WebSocket) -> None:
    await ws.accept()  # CONNECTING -> OPEN
    log.info("open")
    try:
        while True:
            text = await ws.receive_text()
            if text == "bye":
                await ws.close(code=1000)  # Normal closure, started by us.
                log.info("closed by the server with 1000")
                return
            if text.isupper():
                await ws.close(code=1008, reason="No shouting")  # Broke a rule.
                log.info("closed by the server with 1008")
                return
            await ws.send_text(text)
    except WebSocketDisconnect as exc:
        log.info("client left with code %s", exc.code)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    # uvicorn pings each client every PING seconds, and drops one that leaves a
    # ping unanswered for PING seconds. 20 is uvicorn's default for both.
    ping = float(os.environ.get("PING", "20"))
    api.run(ws_ping_interval=ping, ws_ping_timeout=ping)
