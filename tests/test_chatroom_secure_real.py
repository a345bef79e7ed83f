"""The secure rooms over a real server, as a Python client sees them."""

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest
from support import ROOT, TIMEOUT, Server, argv, commands, snippet
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect


def set_cookie(server: Server, name: str = "ann", **headers: str) -> str:
    """Sign in over HTTP; return the Set-Cookie header of the answer."""
    request = urllib.request.Request(
        f"{server.http_url}/login",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Set-Cookie"]


def login(server: Server, name: str = "ann") -> dict[str, str]:
    """Sign in over HTTP; return the Cookie header the session needs."""
    return {"Cookie": set_cookie(server, name).split(";")[0]}


def origin(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def refused_status(server: Server, **options) -> int:
    with pytest.raises(InvalidStatus) as refused:
        with connect(f"{server.ws_url}/chat/main", **options):
            pass  # Never reached: the handshake is refused.
    return refused.value.response.status_code


def test_handshake_refusals_are_http_403(serve) -> None:
    server = serve(commands("chatroom_secure.console")[0])
    cookie = login(server)
    ours, theirs = origin(server), "http://evil.example"
    assert refused_status(server, origin=ours) == 403  # No session.
    assert refused_status(server, origin=theirs, additional_headers=cookie) == 403
    with connect(
        f"{server.ws_url}/chat/main", origin=ours, additional_headers=cookie
    ) as ws:
        ws.send(json.dumps({"text": "hello"}))
        assert json.loads(ws.recv(timeout=10)) == {
            "type": "message",
            "text": "hello",
            "from": "ann",
        }
    server.wait_for("INFO:chatroom:room 'main' closed")  # Its log is on, too.
    server.wait_for(r"^INFO:chatroom:refused: no valid session$")
    with pytest.raises(InvalidStatus):
        with connect(f"{server.ws_url}/chat/main?token=in-the-log"):
            pass  # Never reached: no session.
    server.wait_for(r'"WebSocket /chat/main\?token=in-the-log" 403')
    server.wait_for(r"^INFO:chatroom:refused: origin 'http://evil.example' is not")


def test_session_ending_while_connected_closes_with_4401(serve) -> None:
    server = serve(commands("chatroom_secure.console")[0], CHAT_SESSION_SECONDS="1")
    cookie = login(server)
    with connect(f"{server.ws_url}/chat/main", additional_headers=cookie) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)  # Nothing to hear until the session ends.
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


def test_allowed_origins_come_from_chat_origins(serve) -> None:
    ours = "https://chat.example"
    server = serve(commands("chatroom_secure.console")[0], CHAT_ORIGINS=ours)
    cookie = login(server)
    assert (
        refused_status(server, origin=origin(server), additional_headers=cookie) == 403
    )
    with connect(
        f"{server.ws_url}/chat/main", origin=ours, additional_headers=cookie
    ) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}


def test_the_cookie_gets_secure_behind_an_https_proxy(serve) -> None:
    server = serve(commands("chatroom_secure.console")[0])
    flags = set_cookie(server).split("; ")[1:]
    assert sorted(flags) == ["HttpOnly", "Max-Age=3600", "Path=/", "SameSite=lax"]
    # Uvicorn trusts X-Forwarded-Proto from 127.0.0.1, where a proxy would run.
    proxied = set_cookie(server, **{"X-Forwarded-Proto": "https"})
    assert sorted(proxied.split("; ")[1:]) == sorted([*flags, "Secure"])


@pytest.mark.parametrize("secret", ["changeme", "0123456789abcdef" * 3])
def test_a_weak_chat_secret_stops_the_server(secret: str) -> None:
    command = commands("chatroom_secure.console")[0]
    stopped = subprocess.run(
        argv(command),
        cwd=ROOT,
        env={**os.environ, "CHAT_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert stopped.returncode == 1
    assert stopped.stdout == ""
    # Its last lines; before them, Responder may warn about its own sessions.
    assert stopped.stderr.endswith(snippet("chatroom_secure_weak_secret.txt"))


def test_keys_rotate_newest_first(serve) -> None:
    old, new = "0f" * 32, "e1" * 32
    command = commands("chatroom_secure.console")[0]
    before = serve(command, CHAT_SECRET=old)
    during = serve(command, CHAT_SECRET=f"{new} {old}")
    after = serve(command, CHAT_SECRET=new)
    old_cookie, new_cookie = login(before), login(during)
    assert session_of(during, old_cookie) == 200  # Old sessions still count,
    assert session_of(after, new_cookie) == 200  # new ones are signed anew,
    assert session_of(after, old_cookie) == 401  # and the old key can go.
    assert session_of(before, new_cookie) == 401


def session_of(server: Server, cookie: dict[str, str]) -> int:
    """The status of GET /session with cookie."""
    request = urllib.request.Request(f"{server.http_url}/session", headers=cookie)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_a_name_with_max_sockets_open_gets_403_for_one_more(serve) -> None:
    server = serve(commands("chatroom_secure.console")[0])
    cookie = login(server)
    url = f"{server.ws_url}/chat/main"
    with contextlib.ExitStack() as stack:
        for _ in range(5):  # MAX_SOCKETS
            stack.enter_context(connect(url, additional_headers=cookie))
        assert refused_status(server, additional_headers=cookie) == 403
    server.wait_for(r"^INFO:chatroom:refused: 'ann' has 5 sockets open$")
