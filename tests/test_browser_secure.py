"""The secure chat page in Chromium: sign-in, reconnection, heartbeat."""

import os
import signal

import pytest
from playwright.sync_api import Page, expect
from support import Server, commands, say

SECRET = "a fixed secret, so that sessions outlive a restart"
PAGE = "/static/index.html"


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.http_url + PAGE)
    page.get_by_placeholder("Your name").fill("ann")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#status")).to_have_text("Connected")


@pytest.mark.verifies("secure/index.html")
def test_page_reconnects_by_itself_after_a_restart(serve, browser) -> None:
    command = commands("chatroom_secure.console")[0]
    server = serve(command, CHAT_SECRET=SECRET)
    page = browser.new_page()
    sign_in(page, server)
    say(page, "before")
    expect(page.locator("#messages li").last).to_have_text("before")

    server.stop()
    expect(page.locator("#status")).to_contain_text("Disconnected; retrying in")
    serve(command, port=server.port, CHAT_SECRET=SECRET)
    expect(page.locator("#status")).to_have_text("Connected", timeout=20_000)
    say(page, "after")
    expect(page.locator("#messages li")).to_have_text(["before", "after"])
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_heartbeat_notices_a_frozen_server(serve, browser) -> None:
    server = serve(commands("chatroom_secure.console")[0])
    page = browser.new_page()
    page.clock.install()  # The page's timers now run when the test says.
    sign_in(page, server)
    os.kill(server.process.pid, signal.SIGSTOP)  # Alive for TCP, deaf for us.
    try:
        # Pings at 10 s and 20 s go unanswered; at 30 s the page gives up on
        # the socket, and its first retry (within 0.5 s) is a new handshake.
        page.clock.run_for(31_000)
        expect(page.locator("#status")).to_have_text("Connecting…")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    expect(page.locator("#status")).to_have_text("Connected")  # The new socket.
    say(page, "back")
    expect(page.locator("#messages li").last).to_have_text("back")
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_ended_session_asks_to_sign_in_again(serve, browser) -> None:
    server = serve(commands("chatroom_secure.console")[0], CHAT_SESSION_SECONDS="2")
    page = browser.new_page()
    sign_in(page, server)
    expect(page.locator("#status")).to_have_text("Session expired: sign in again")
    expect(page.get_by_placeholder("Type, then press Enter")).to_be_disabled()
    page.close()


def test_browser_sees_a_refused_handshake_only_as_1006(serve, browser) -> None:
    server = serve(commands("chatroom_secure.console")[0])
    page = browser.new_page()
    page.goto(server.http_url + PAGE)  # Same origin, but not signed in.
    code = page.evaluate(
        """url => new Promise(done => {
            new WebSocket(url).addEventListener("close", event => done(event.code));
        })""",
        f"{server.ws_url}/chat/main",
    )
    assert code == 1006
    server.wait_for('"WebSocket /chat/main" 403')
    page.close()
