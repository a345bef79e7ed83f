"""The same two routes, fixed: one owner per socket, and no blocking call."""

import asyncio

import responder
from mistakes import make_report
from starlette.websockets import WebSocket, WebSocketState

api = responder.API()


async def close_once(ws: WebSocket, code: int = 1000) -> None:
    """Close, unless this side already has: calling it twice is harmless."""
    if ws.application_state is not WebSocketState.DISCONNECTED:
        await ws.close(code)


@api.route("/bye", websocket=True)
async def bye(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text("one more thing")  # Everything said, then the close.
    await close_once(ws)
    await close_once(ws)  # A second close, from a cleanup path: no error.


@api.route("/report", websocket=True)
async def report(ws: WebSocket) -> None:
    await ws.accept()
    text = await asyncio.to_thread(make_report)  # The loop serves others meanwhile.
    await ws.send_text(text)
    await close_once(ws)


if __name__ == "__main__":
    api.run()
