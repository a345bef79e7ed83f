"""Two mistakes of the troubleshooting page, to run and see fail."""

import os
import time

import responder
from starlette.websockets import WebSocket

api = responder.API()
REPORT_SECONDS = float(os.environ.get("REPORT_SECONDS", "60"))


@api.route("/bye", websocket=True)
async def bye(ws: WebSocket) -> None:
    await ws.accept()
    await ws.close()
    await ws.send_text("one more thing")  # Too late: the socket is closed.


def make_report() -> str:
    time.sleep(REPORT_SECONDS)  # Any blocking call: a query, requests.get(...).
    return "report ready"


@api.route("/report", websocket=True)
async def report(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(make_report())  # Blocks the event loop: every client waits.
    await ws.close()


if __name__ == "__main__":
    api.run()
