"""The chat behind nginx (snippets/nginx.conf), over TLS, as deployed."""

from __future__ import annotations

import json
import ssl
from contextlib import ExitStack

import pytest
from nginx_server import PUBLIC, Nginx
from playwright.sync_api import Error, expect
from support import TIMEOUT, Server, say
from test_chatroom_redis import app, speak, texts
from websockets.sync.client import ClientConnection, connect

PING = json.dumps({"type": "ping"})


def deployed(serve, redis, nginx, **settings: str) -> tuple[Nginx, list[Server]]:
    """Two chatroom_redis.py processes on one Redis, and nginx in front."""
    apps = [app(serve, redis), app(serve, redis)]
    return nginx((apps[0].port, apps[1].port), **settings), apps


def member(stack: ExitStack, proxy: Nginx, room: str = "main") -> ClientConnection:
    """A Python client over wss://, trusting the test CA only; in once a ping
    is answered."""
    ws = stack.enter_context(
        connect(
            f"{proxy.ws_url}/chat/{room}",
            ssl=proxy.tls.client_context(),
            server_hostname=PUBLIC,
        )
    )
    ws.send(PING)
    assert json.loads(ws.recv(timeout=TIMEOUT)) == {"type": "pong"}
    return ws


def test_python_clients_chat_over_wss_through_nginx(serve, redis, nginx) -> None:
    proxy, apps = deployed(serve, redis, nginx)
    with ExitStack() as stack:
        ann, ben = member(stack, proxy), member(stack, proxy)
        for server in apps:  # nginx sent one to each process, in turn.
            server.wait_for(r"subscribed to chat:main$")
        speak(ann, "over TLS")
        assert texts(ann, 1) == texts(ben, 1) == ["over TLS"]


def test_a_certificate_from_another_ca_is_refused(serve, redis, nginx) -> None:
    proxy, _ = deployed(serve, redis, nginx)
    other = ssl.create_default_context()  # The system's CAs: not ours.
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(f"{proxy.ws_url}/chat/main", ssl=other, server_hostname=PUBLIC)


def https_browser(browser, proxy: Nginx):
    """Chromium that resolves the public name to nginx, and trusts its
    certificate, and only it, by the hash of its public key."""
    return browser.launch_with(
        f"--host-resolver-rules=MAP {PUBLIC} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={proxy.tls.spki}",
    )


@pytest.mark.verifies("scaled/index.html", "nginx.conf")
def test_the_page_over_https_chats_over_wss(serve, redis, nginx, browser) -> None:
    proxy, _ = deployed(serve, redis, nginx)
    trusting = https_browser(browser, proxy)
    try:
        pages = [trusting.new_page(), trusting.new_page()]
        for page in pages:
            page.goto(f"{proxy.url}/static/index.html")
            expect(page.locator("#status")).to_have_text("Connected")
        assert pages[0].evaluate("location.protocol") == "https:"
        with ExitStack() as stack:
            ann = member(stack, proxy)
            say(pages[0], "from the page")
            for page in pages:
                expect(page.locator("#messages li").last).to_have_text("from the page")
            assert texts(ann, 1) == ["from the page"]
    finally:
        trusting.close()


def test_without_trust_the_browser_refuses_the_page(serve, redis, nginx, browser):
    proxy, _ = deployed(serve, redis, nginx)
    wary = browser.launch_with(f"--host-resolver-rules=MAP {PUBLIC} 127.0.0.1")
    try:
        page = wary.new_page()
        with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(f"{proxy.url}/static/index.html")
    finally:
        wary.close()
