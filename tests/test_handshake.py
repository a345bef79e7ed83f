"""Section 1: the handshake shown on the page is what uvicorn really answers."""

import socket

import responder
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from support import commands, handshake, snippet


def test_handshake_response_is_as_shown(serve) -> None:
    server = serve(commands("echo.console")[0])
    request = snippet("handshake_request.http").replace("\n", "\r\n") + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = handshake(sock, request)
    status, *headers = head.removesuffix("\r\n\r\n").split("\r\n")
    shown_status, *shown_headers = snippet("handshake_response.http").splitlines()
    assert status == shown_status
    real = {
        name.lower(): value for name, _, value in (h.partition(": ") for h in headers)
    }
    for line in shown_headers:
        name, _, value = line.partition(": ")
        assert real.get(name.lower()) == value, f"{name}: {real}"


def test_a_websocket_route_gets_starlettes_websocket_with_the_handshake() -> None:
    seen = {}
    probe = responder.API()

    @probe.route("/seen/{room}", websocket=True)
    async def record(ws: WebSocket, room: str) -> None:
        seen.update(
            kind=type(ws),
            path=ws.url.path,
            query=dict(ws.query_params),
            header=ws.headers["x-hello"],
            cookies=ws.cookies,
        )
        await ws.accept()
        await ws.close()

    @probe.route("/page")
    def page(req: responder.Request, resp: responder.Response) -> None:
        resp.text = f"an HTTP view gets {type(req).__name__} and {type(resp).__name__}"

    with TestClient(probe, cookies={"name": "ann"}) as client:
        with client.websocket_connect("/seen/main?x=1", headers={"X-Hello": "hi"}):
            pass
        assert client.get("/page").text == "an HTTP view gets Request and Response"
    assert seen == {
        "kind": WebSocket,
        "path": "/seen/main",
        "query": {"x": "1"},
        "header": "hi",
        "cookies": {"name": "ann"},
    }
