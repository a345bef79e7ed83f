"""The troubleshooting page: each error message, reproduced as users meet it."""

from __future__ import annotations

import re
import socket
import subprocess

import fixes
import mistakes
import pytest
import responder
import uvicorn
from playwright.sync_api import expect
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from support import (
    ROOT,
    TIMEOUT,
    argv,
    closed_by_app,
    commands,
    free_port,
    handshake,
    raw_websocket,
    read_frame,
    run,
    snippet,
)
from terminal import converse
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n{extra}\r\n"
)


def shown_log(name: str) -> re.Pattern[str]:
    """A shown excerpt as a pattern: its lines in order, a "...", line for any."""
    lines = [
        r"(?:.*\n)*?" if line.strip() == "..." else re.escape(line) + r"\n"
        for line in snippet(name).splitlines()
        if not line.startswith("$ ")
    ]
    return re.compile("^" + "".join(lines), re.MULTILINE)


def status_line(server, path: str, extra: str = "") -> str:
    """The first line of the server's answer to a WebSocket handshake on path."""
    with socket.create_connection(("127.0.0.1", server.port), TIMEOUT) as sock:
        head = handshake(sock, UPGRADE.format(path=path, extra=extra))
    return head.splitlines()[0]


# A uvicorn that finds neither websockets nor wsproto, as in an environment
# where only plain `uvicorn` was installed (None in sys.modules: ImportError).
WITHOUT_LIBRARIES = (
    "import sys; sys.modules['websockets'] = sys.modules['wsproto'] = None; "
    "import uvicorn; uvicorn.run('echo:api', app_dir='snippets', port={port})"
)


@pytest.mark.parametrize(
    "command",
    [
        "python -c " + repr(WITHOUT_LIBRARIES),
        "python -m uvicorn --app-dir snippets --ws none --port {port} echo:api",
    ],
    ids=["no-library", "ws-none"],
)
def test_without_a_websocket_library_uvicorn_answers_plain_http(
    serve, command: str
) -> None:
    port = free_port()
    server = serve(command.format(port=port), port)
    assert status_line(server, "/ws") == "HTTP/1.1 404 Not Found"
    server.wait_for(r"No supported WebSocket library detected")
    assert shown_log("no_websocket_library_log.txt").search(server.output)


def test_with_websockets_installed_auto_upgrades(serve) -> None:
    port = free_port()
    command = "python -m uvicorn --app-dir snippets --port {port} echo:api"
    server = serve(command.format(port=port), port)
    assert status_line(server, "/ws") == "HTTP/1.1 101 Switching Protocols"
    assert "Unsupported upgrade request." not in server.output


def test_403_for_an_unknown_route_and_a_refusal_before_accept(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    converse(server, "forbidden.console", hang_up=False, exit_code=1)
    server.wait_for(r'"WebSocket /nowhere" 403')
    assert status_line(server, "/chat/Main") == "HTTP/1.1 403 Forbidden"  # A name.
    server.wait_for(r'"WebSocket /chat/Main" 403')
    assert status_line(server, "/chat/main") == "HTTP/1.1 101 Switching Protocols"


def test_403_for_a_page_of_another_origin(serve) -> None:
    server = serve(commands("chatroom_secure.console")[0])
    other = "Origin: http://elsewhere.example\r\n"
    assert status_line(server, "/chat/main", other) == "HTTP/1.1 403 Forbidden"
    server.wait_for(r"refused: origin 'http://elsewhere.example' is not allowed")


def test_send_after_close_is_the_error_shown(serve) -> None:
    server = serve(commands("mistakes.console")[0])
    (command,) = commands("bye_session.console")
    assert run(command, server).stdout == "\n"  # Closed before any message.
    server.wait_for(r"^starlette\.websockets\.WebSocketDisconnected: ")
    assert shown_log("send_after_close_log.txt").search(server.output)


def test_one_owner_closes_once_and_says_everything_first() -> None:
    with TestClient(fixes.api).websocket_connect("/bye") as ws:
        assert ws.receive_text() == "one more thing"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1000


def test_close_once_is_safe_to_repeat_where_close_is_not() -> None:
    refusals: list[str] = []
    app = responder.API()

    @app.route("/ws", websocket=True)
    async def route(ws: WebSocket) -> None:
        await ws.accept()
        await fixes.close_once(ws, 1001)
        await fixes.close_once(ws, 1001)  # Nothing happens.
        try:
            await ws.close()  # A second close() of its own is refused.
        except RuntimeError as error:
            refusals.append(str(error))

    with TestClient(app).websocket_connect("/ws") as ws:
        assert closed_by_app(ws)[0] == 1001
    assert refusals == ['Cannot call "send" once a close message has been sent.']


def test_a_receive_with_nothing_to_come_hangs_until_pytest_timeout() -> None:
    (command,) = commands("hangs.console")
    result = subprocess.run(
        argv(command), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 1, result.stdout
    assert shown_log("hangs.console").search(result.stdout), result.stdout
    assert "1 failed" in result.stdout


def test_a_blocked_loop_misses_the_clients_pings(serve) -> None:
    server = serve(commands("mistakes.console")[0], REPORT_SECONDS="3")
    url = f"{server.ws_url}/report"
    with connect(url, ping_interval=0.2, ping_timeout=0.2) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=TIMEOUT)
    error = closed.value
    shown = snippet("blocked_loop_error.txt").strip()
    assert f"{type(error).__module__}.{type(error).__name__}: {error}" == shown
    assert error.sent is not None and error.sent.code == 1011


def test_the_fixed_report_runs_in_a_thread_and_keeps_the_loop_free(serve) -> None:
    server = serve(commands("fixes.console")[0], REPORT_SECONDS="3")
    with connect(f"{server.ws_url}/report", ping_interval=0.2, ping_timeout=0.2) as ws:
        assert ws.recv(timeout=TIMEOUT) == "report ready"  # Pongs came meanwhile.


def test_1006_in_the_browser_for_a_refused_handshake_and_a_killed_server(
    serve, browser
) -> None:
    server = serve(commands("chatroom.console")[0])
    page = browser.new_page()
    page.goto(f"{server.http_url}/static/index.html#Main")  # Not a room name.
    expect(page.locator("#status")).to_have_text("Connection closed (code 1006)")
    page.close()
    page = browser.new_page()
    page.goto(f"{server.http_url}/static/index.html#main")
    expect(page.locator("#status")).to_have_text("Connected")
    server.process.kill()  # No close frame: the process is gone.
    expect(page.locator("#status")).to_have_text("Connection closed (code 1006)")
    page.close()


def test_uvicorn_pings_a_quiet_connection_every_ping_interval(serve) -> None:
    defaults = uvicorn.Config(mistakes.api)
    assert (defaults.ws_ping_interval, defaults.ws_ping_timeout) == (20.0, 20.0)
    port = free_port()
    command = "python -m uvicorn --app-dir snippets --ws-ping-interval 0.2"
    server = serve(f"{command} --port {port} echo:api", port)
    sock = raw_websocket(server, "/ws")
    with sock:
        opcode, _ = read_frame(sock)  # The client said nothing, and nor did the app.
    assert opcode == 0x9  # A ping.
