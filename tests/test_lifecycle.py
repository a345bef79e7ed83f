"""Section 8: the life of a connection and the close codes the page names."""

import logging
import os
import runpy
import signal
import socket
import time

import lifecycle
import lifecycle_client
import pytest
import responder
import uvicorn
from playwright.sync_api import expect
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from support import (
    SNIPPETS,
    closed_by_app,
    closed_by_stopping,
    commands,
    raw_websocket,
    read_frame,
    run,
    snippet,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.sync.client import connect

client = TestClient(lifecycle.api)


def test_open_connection_echoes(caplog) -> None:
    caplog.set_level(logging.INFO, "lifecycle")
    with client.websocket_connect("/lifecycle") as ws:
        ws.send_text("Hello")
        assert ws.receive_text() == "Hello"
    assert caplog.messages == ["open", "client left with code 1000"]


def test_bye_closes_normally_with_1000(caplog) -> None:
    caplog.set_level(logging.INFO, "lifecycle")
    with client.websocket_connect("/lifecycle") as ws:
        ws.send_text("bye")
        assert closed_by_app(ws) == (1000, "")
    assert caplog.messages[-1] == "closed by the server with 1000"


def test_shouting_breaks_a_rule_1008(caplog) -> None:
    caplog.set_level(logging.INFO, "lifecycle")
    with client.websocket_connect("/lifecycle") as ws:
        ws.send_text("HELLO")
        assert closed_by_app(ws) == (1008, "No shouting")
    assert caplog.messages[-1] == "closed by the server with 1008"


def test_idle_client_is_closed_with_1001(monkeypatch) -> None:
    assert lifecycle.api.router.ws_idle_timeout == 30  # As the comment says.
    monkeypatch.setattr(lifecycle.api.router, "ws_idle_timeout", 0.05)
    with client.websocket_connect("/lifecycle") as ws:
        assert closed_by_app(ws)[0] == 1001


def test_handler_crash_is_logged_and_closes_with_1011(caplog) -> None:
    broken = responder.API()

    @broken.route("/ws", websocket=True)
    async def crash(ws: WebSocket) -> None:
        await ws.accept()
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        with TestClient(broken).websocket_connect("/ws") as ws:
            assert closed_by_app(ws)[0] == 1011
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "Unhandled exception in WebSocket handler"
    assert record.exc_info and record.exc_info[0] is ValueError  # The traceback.


def test_vanished_client_is_seen_as_1005(serve) -> None:
    server = serve(commands("lifecycle.console")[0])
    with connect(f"{server.ws_url}/lifecycle") as ws:
        server.wait_for("INFO:lifecycle:open")
        ws.socket.shutdown(socket.SHUT_RDWR)
        server.wait_for("INFO:lifecycle:client left with code 1005")


def test_stopping_uvicorn_closes_clients_with_1012(serve) -> None:
    server = serve(commands("lifecycle.console")[0])
    with connect(f"{server.ws_url}/lifecycle") as ws:
        server.wait_for("INFO:lifecycle:open")
        assert closed_by_stopping(server, ws) == 1012


def test_a_browser_leaving_the_page_closes_with_1001(serve, browser) -> None:
    server = serve(commands("lifecycle.console")[0])
    page = browser.new_page()
    page.evaluate(
        "url => { window.socket = new WebSocket(url); }", f"{server.ws_url}/lifecycle"
    )
    server.wait_for("INFO:lifecycle:open")
    page.goto("about:blank")  # Navigating away.
    server.wait_for("INFO:lifecycle:client left with code 1001")
    page.close()


def test_uvicorn_pings_every_20_seconds_by_default() -> None:
    config = uvicorn.Config(lifecycle.api)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (20.0, 20.0)
    config.load()  # The default, ws="auto", picks this implementation:
    assert config.ws_protocol_class is WebSocketsSansIOProtocol


def test_without_ping_set_it_uses_uvicorns_defaults(monkeypatch) -> None:
    served = {}
    monkeypatch.delenv("PING", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    runpy.run_path(str(SNIPPETS / "lifecycle.py"), run_name="__main__")
    assert (served["ws_ping_interval"], served["ws_ping_timeout"]) == (20.0, 20.0)


def test_a_silent_peer_is_dropped_after_ping_interval_plus_timeout(serve) -> None:
    ping = 1.0  # Seconds, for both the interval and the timeout.
    server = serve(commands("lifecycle.console")[0], PING=str(ping))
    polite = connect(f"{server.ws_url}/lifecycle")  # It answers every ping.
    started = time.monotonic()  # Before the handshake, so before uvicorn's clock.
    with polite, raw_websocket(server, "/lifecycle") as sock:  # It never answers.
        opcode, _ = read_frame(sock)
        pinged = time.monotonic()
        assert opcode == 0x9  # A ping.
        assert read_frame(sock) == (0x8, b"\x03\xf3keepalive ping timeout")  # 1011
        dropped = time.monotonic()
        server.wait_for(r"INFO:lifecycle:client left with code 1005$")
        polite.send("still here")  # Pinged as often, but it answered: still open.
        assert polite.recv(timeout=10) == "still here"
    # Lower bounds only: the client's clock starts first. But uvloop's (libuv's)
    # clock counts whole milliseconds, truncated, so each of its timers may end
    # up to 1 ms early by ours (seen: 0.99988 s for 1 s).
    assert pinged - started >= ping - 0.001
    assert dropped - started >= ping + ping - 0.002


def test_a_browser_reports_1006_when_the_connection_drops(serve, browser) -> None:
    server = serve(commands("lifecycle.console")[0])
    page = browser.new_page()
    page.evaluate(
        """url => new Promise(opened => {
            const socket = new WebSocket(url);
            socket.onopen = opened;
            socket.onclose = event => { document.title = `closed ${event.code}`; };
        })""",
        f"{server.ws_url}/lifecycle",
    )
    os.killpg(server.process.pid, signal.SIGKILL)  # Gone without a close frame.
    expect(page).to_have_title("closed 1006")
    page.close()


def shown_session(console: str) -> list[tuple[str, str]]:
    """Each command of a console snippet, with the output shown under it."""
    shown: list[tuple[str, str]] = []
    for line in snippet(console).splitlines(keepends=True):
        if line.startswith("$ "):
            shown.append((line.removeprefix("$ ").rstrip("\n"), ""))
        else:
            command, output = shown[-1]
            shown[-1] = (command, output + line)
    return shown


def test_the_client_sees_what_the_page_shows(serve) -> None:
    server = serve(commands("lifecycle.console")[0])
    for command, output in shown_session("lifecycle_client.console"):
        result = run(command, server)
        assert result.returncode == 0, result.stderr
        assert result.stdout == output
    server.wait_for(r"INFO:lifecycle:client left")  # The last client is gone.
    lines = server.output.splitlines(keepends=True)
    logged = [line for line in lines if line.startswith("INFO:lifecycle:")]
    assert "".join(logged) == snippet("lifecycle_log.txt")


def test_the_client_in_process_reports_the_close(serve, capsys) -> None:
    server = serve(commands("lifecycle.console")[0])
    lifecycle_client.main(f"{server.ws_url}/lifecycle", ["HELLO"])
    assert (
        capsys.readouterr().out == "> HELLO\nclosed by the server: 1008 No shouting\n"
    )
