"""Section 2: the echo server, in-process and as `python snippets/echo.py`."""

import re

import echo_uncaught
import pytest
import uvicorn
from echo import api
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from support import commands, run, snippet
from websockets.sync.client import connect


def test_echo_answers_each_message_in_order() -> None:
    with TestClient(api).websocket_connect("/ws") as ws:
        for text in ["one", "two", ""]:
            ws.send_text(text)
            assert ws.receive_text() == f"Echo: {text}"


def test_uncaught_disconnect_fails_a_testclient_test() -> None:
    """Responder re-raises WebSocketDisconnect, so it escapes the with block."""
    with pytest.raises(WebSocketDisconnect) as left:
        with TestClient(echo_uncaught.api).websocket_connect("/ws") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "Echo: hi"
    assert left.value.code == 1000


def shown_log(name: str) -> re.Pattern[str]:
    """A log excerpt as a pattern: its lines in order, "  ..." for any lines."""
    lines = [
        r"(?:.*\n)*?" if line == "  ..." else re.escape(line) + r"\n"
        for line in snippet(name).splitlines()
    ]
    return re.compile("^" + "".join(lines), re.MULTILINE)


def test_uncaught_disconnect_logs_a_traceback_under_uvicorn(serve) -> None:
    server = serve(commands("echo_uncaught.console")[0])
    result = run(commands("echo_client.console")[1], server)
    assert result.stdout == snippet("echo_client_output.txt")  # The echo worked.
    server.wait_for(r"^starlette\.websockets\.WebSocketDisconnect: ")
    assert shown_log("echo_uncaught_log.txt").search(server.output), server.output


def test_caught_disconnect_logs_no_error_under_uvicorn(serve) -> None:
    server = serve(commands("echo.console")[0])
    result = run(commands("echo_client.console")[1], server)
    assert result.stdout == snippet("echo_client_output.txt")
    assert server.stop() == 0  # All its output is in: the client left before.
    assert "INFO:     connection open" in server.output
    assert "ERROR" not in server.output
    assert "Traceback" not in server.output


def test_without_port_it_serves_on_localhost_5042(monkeypatch) -> None:
    served = {}
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    api.run()
    assert (served["host"], served["port"]) == ("127.0.0.1", 5042)


def test_python_snippets_echo_serves_on_port(serve) -> None:
    server = serve(commands("echo.console")[0])
    # With PORT set, Responder listens on every interface, and says so.
    server.wait_for(rf"Uvicorn running on http://0\.0\.0\.0:{server.port} ")
    assert "RANDOM per-process session key" in server.output
    with connect(f"{server.ws_url}/ws") as ws:
        ws.send("over the wire")
        assert ws.recv(timeout=10) == "Echo: over the wire"
