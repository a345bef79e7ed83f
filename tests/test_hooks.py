"""Section 7: what a WebSocket before-request hook may and may not do."""

import secrets

import pytest
import responder
from hooks import api
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from support import commands, refused_by_app, run, snippet
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


@pytest.mark.parametrize("path", ["/ws", "/other"])
def test_hook_that_accepts_breaks_every_route(path: str) -> None:
    eager = responder.API()

    @eager.before_request(websocket=True)
    async def accept_early(ws: WebSocket) -> None:
        await ws.accept()

    @eager.route("/ws", websocket=True)
    async def route(ws: WebSocket) -> None:
        await ws.accept()

    @eager.route("/other", websocket=True)
    async def other(ws: WebSocket) -> None:
        await ws.accept()

    with pytest.raises(RuntimeError) as broken:
        with TestClient(eager).websocket_connect(path):
            pass  # Never reached: the route's accept() raises.
    # As the hooks page says it, and as the troubleshooting page shows it:
    shown = snippet("double_accept_error.txt").strip()
    assert f"{type(broken.value).__name__}: {broken.value}" == shown


def test_hook_that_closes_stops_the_route() -> None:
    ran: list[str] = []
    strict = responder.API()

    @strict.before_request(websocket=True)
    async def refuse(ws: WebSocket) -> None:
        await ws.close(code=1008)

    @strict.route("/ws", websocket=True)
    async def route(ws: WebSocket) -> None:
        ran.append("route")

    assert refused_by_app(TestClient(strict), "/ws") == 1008
    assert ran == []


@pytest.mark.parametrize("token", ["wrong", "", "%C3%A9t%C3%A9"])
def test_bad_tokens_are_refused_with_1008(token: str) -> None:
    assert refused_by_app(TestClient(api), f"/private?token={token}") == 1008


def test_real_client_is_refused_with_http_403(serve) -> None:
    server = serve(commands("hooks.console")[0])
    with pytest.raises(InvalidStatus) as refused:
        with connect(f"{server.ws_url}/private?token=guess"):
            pass
    assert refused.value.response.status_code == 403


def test_real_client_with_token_is_welcomed(serve) -> None:
    server = serve(commands("hooks.console")[0])
    result = run(commands("hooks_client.console")[0], server)
    assert result.returncode == 0, result.stderr
    assert result.stdout == snippet("hooks_client_output.txt")
    # The token is in the server's access log, as the page warns.
    server.wait_for(r'"WebSocket /private\?token=s3cret" \[accepted\]')


def test_real_client_without_token_fails_in_the_handshake(serve) -> None:
    server = serve(commands("hooks.console")[0])
    without_token = commands("hooks_client.console")[0].replace("?token=s3cret", "")
    result = run(without_token, server)
    assert result.returncode == 1
    assert (
        "WebSocketBadStatusException: Handshake status 403 Forbidden" in result.stderr
    )


def test_chat_token_sets_the_secret(serve) -> None:
    server = serve(commands("hooks.console")[0], CHAT_TOKEN="another")
    assert run(commands("hooks_client.console")[0], server).returncode == 1
    command = commands("hooks_client.console")[0].replace("s3cret", "another")
    assert run(command, server).stdout == snippet("hooks_client_output.txt")


def test_compare_digest_refuses_non_ascii_str() -> None:
    """Why the hook compares bytes: a client may send any characters."""
    with pytest.raises(TypeError):
        secrets.compare_digest("été", "s3cret")
    assert not secrets.compare_digest("été".encode(), b"s3cret")
