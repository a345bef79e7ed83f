"""One route per kind of message: text, JSON and binary."""

import hashlib

import responder
from starlette.websockets import WebSocket, WebSocketDisconnect

api = responder.API()


@api.route("/text", websocket=True)
async def count_words(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            text = await ws.receive_text()
            await ws.send_text(f"{len(text.split())} words")
    except WebSocketDisconnect:
        pass


@api.route("/json", websocket=True)
async def acknowledge(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            message = await ws.receive_json()  # Parses the text frame as JSON.
            await ws.send_json({"type": "ack", "id": message["id"]})
    except WebSocketDisconnect:
        pass


@api.route("/bytes", websocket=True)
async def checksum(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            data = await ws.receive_bytes()  # A binary frame, as bytes.
            await ws.send_bytes(hashlib.sha256(data).digest())
    except WebSocketDisconnect:
        pass


if __name__ == "__main__":
    api.run()
