"""The secure chat page in Chromium: sign-in, reconnection, heartbeat, sessions,
and what pages of other origins and other sites can do."""

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect
from support import Server, commands, free_port, say

SECRET = "5e" * 32  # A fixed CHAT_SECRET, so that sessions outlive a restart.
PAGE = "/static/index.html"
ENDED = "Your session ended: sign in again"


def chat(serve, **env: str) -> Server:
    return serve(commands("chatroom_secure.console")[0], **env)


def stop_the_clock(page: Page) -> None:
    """From now on, the page's timers run only when the test says."""
    page.clock.install(time=0)
    page.clock.pause_at(1_000)  # Installed, the clock would still tick.


def sign_in(page: Page, server: Server, name: str = "ann") -> None:
    page.goto(server.http_url + PAGE)
    page.get_by_placeholder("Your name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#status")).to_have_text("Connected")


@contextlib.contextmanager
def other_page(host: str, html: str = "<title>elsewhere</title>") -> Iterator[str]:
    """Serve html from host on a free port, in a thread; yield its origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass  # Quiet: the test reads the chat server's log, not this one.

    with ThreadingHTTPServer((host, 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


OPEN_SOCKET = """url => new Promise(done => {
    const ws = new WebSocket(url);
    ws.addEventListener("open", () => { ws.close(); done("open"); });
    ws.addEventListener("close", event => done(event.code));
})"""


@pytest.mark.verifies("secure/index.html")
def test_page_reconnects_by_itself_after_a_restart(serve, browser) -> None:
    server = chat(serve, CHAT_SECRET=SECRET)
    page = browser.new_page()
    stop_the_clock(page)
    sign_in(page, server)
    assert page.evaluate("document.cookie") == ""  # HttpOnly: not for scripts.
    say(page, "before")
    expect(page.locator("#messages li").last).to_have_text("ann: before")

    server.stop()
    expect(page.locator("#status")).to_contain_text("Disconnected; retrying in")
    chat(serve, port=server.port, CHAT_SECRET=SECRET)
    page.clock.run_for(500)  # The first retry waits at most 0.5 s.
    expect(page.locator("#status")).to_have_text("Connected")
    say(page, "after")
    expect(page.locator("#messages li")).to_have_text(["ann: before", "ann: after"])
    page.close()


def waits(page: Page) -> float:
    """The wait the page's status announces, in seconds."""
    status = page.locator("#status")
    expect(status).to_contain_text("retrying in")
    return float(status.inner_text().split("retrying in ")[1].removesuffix(" s"))


@pytest.mark.verifies("secure/index.html")
def test_retries_back_off_with_jitter_and_start_over_after_an_open(
    serve, browser
) -> None:
    server = chat(serve, CHAT_SECRET=SECRET)
    page = browser.new_page()
    stop_the_clock(page)
    sign_in(page, server)
    server.stop()
    for ceiling in [0.5, 1, 2, 4, 8, 16, 30, 30]:
        wait = waits(page)
        assert ceiling / 2 - 0.05 <= wait <= ceiling + 0.05  # Rounded to 0.1 s.
        page.clock.run_for(int(wait * 1000) + 100)  # The retry fails: no server.
        expect(page.locator("#status")).not_to_have_text(
            f"Disconnected; retrying in {wait} s"
        )
    server = chat(serve, port=server.port, CHAT_SECRET=SECRET)
    page.clock.run_for(30_000)
    expect(page.locator("#status")).to_have_text("Connected")
    server.stop()
    assert waits(page) <= 0.5 + 0.05  # Counted from the start again.
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_heartbeat_notices_a_frozen_server(serve, browser) -> None:
    server = chat(serve)
    page = browser.new_page()
    stop_the_clock(page)
    sign_in(page, server)
    assert not page.evaluate("'ping' in WebSocket.prototype")  # Pages cannot ping.
    os.kill(server.process.pid, signal.SIGSTOP)  # Alive for TCP, deaf for us.
    try:
        # Pings at 10 s and 20 s go unanswered; at 30 s the page gives up on
        # the socket, and its first retry (within 0.5 s) is a new handshake.
        page.clock.run_for(29_000)
        expect(page.locator("#status")).to_have_text("Connected")
        page.clock.run_for(2_000)
        expect(page.locator("#status")).to_have_text("Connecting…")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    expect(page.locator("#status")).to_have_text("Connected")  # The new socket.
    say(page, "back")
    expect(page.locator("#messages li").last).to_have_text("ann: back")
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_a_session_that_ends_while_connected_asks_to_sign_in_again(
    serve, browser
) -> None:
    server = chat(serve, CHAT_SESSION_SECONDS="2")
    page = browser.new_page()
    sign_in(page, server)
    expect(page.locator("#status")).to_have_text(ENDED)
    expect(page.get_by_placeholder("Type, then press Enter")).to_be_disabled()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    server.wait_for(r"closing a member of 'main' with 4401")
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_signing_out_ends_the_session_in_every_tab(serve, browser) -> None:
    server = chat(serve)
    context = browser.new_context()
    first, second = context.new_page(), context.new_page()
    sign_in(first, server)
    sign_in(second, server)
    first.get_by_role("button", name="Sign out").click()
    expect(first.locator("#status")).to_have_text("Signed out")
    expect(second.locator("#status")).to_have_text(ENDED)  # Closed with 4401.
    expect(second.get_by_role("button", name="Sign in")).to_be_visible()
    assert context.cookies() == []  # The cookie is gone, too.
    context.close()


@pytest.mark.verifies("secure/index.html")
def test_a_refused_handshake_without_a_session_stops_the_retries(
    serve, browser
) -> None:
    server = chat(serve)  # No CHAT_SECRET: a restart invalidates every session.
    page = browser.new_page()
    stop_the_clock(page)
    sign_in(page, server)
    server.stop()
    expect(page.locator("#status")).to_contain_text("Disconnected; retrying in")
    restarted = chat(serve, port=server.port)
    page.clock.run_for(500)  # The retry: refused, so the page asks /session.
    expect(page.locator("#status")).to_have_text(ENDED)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.clock.run_for(10 * 60_000)  # Ten minutes: no retry is pending.
    expect(page.locator("#status")).to_have_text(ENDED)
    assert restarted.output.count('"WebSocket /chat/main" 403') == 1
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_a_page_that_fell_behind_is_told_so_and_reconnects(serve, browser) -> None:
    server = chat(serve)
    page = browser.new_page()
    routes: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        """Pass the page's socket through to the server, and keep a handle."""
        route.connect_to_server()
        routes.append(route)

    # How the room's 1008 reaches the page is shown by the room's own tests
    # (a client that stops reading); a browser reads whatever arrives, so
    # here Playwright stands between page and server and sends that close.
    page.route_web_socket(f"{server.ws_url}/chat/main", through)
    sign_in(page, server)
    routes[0].close(code=1008, reason="")
    expect(page.locator("#status")).to_contain_text("Fell behind; retrying in")
    expect(page.locator("#status")).to_have_text("Connected")
    assert len(routes) == 2
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_signing_in_twice_keeps_one_socket(serve, browser) -> None:
    server = chat(serve)
    page = browser.new_page()
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(server.http_url + PAGE)
    page.get_by_placeholder("Your name").fill("ann")
    page.evaluate("() => { login.requestSubmit(); login.requestSubmit(); }")
    expect(page.locator("#status")).to_have_text("Connected")
    assert len(sockets) == 2
    if not sockets[0].is_closed():
        sockets[0].wait_for_event("close")  # The first, closed by the second.
    say(page, "hi once")
    say(page, "and done")
    expect(page.locator("#messages li")).to_have_text(["ann: hi once", "ann: and done"])
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.verifies("secure/index.html")
def test_long_names_and_words_do_not_widen_the_page(serve, browser, width) -> None:
    server = chat(serve)
    page = browser.new_page(viewport={"width": width, "height": 800})
    sign_in(page, server, "n" * 30)
    say(page, "w" * 2000)
    expect(page.locator("#messages li")).to_have_count(1)
    root = "document.documentElement"
    assert page.evaluate(f"{root}.scrollWidth <= {root}.clientWidth")
    page.close()


def test_browser_sees_a_refused_handshake_only_as_1006(serve, browser) -> None:
    server = chat(serve)
    page = browser.new_page()
    page.goto(server.http_url + PAGE)  # Same origin, but not signed in.
    assert page.evaluate(OPEN_SOCKET, f"{server.ws_url}/chat/main") == 1006
    # The constructor takes a URL and subprotocols: an object of headers is
    # read as a subprotocol named "[object Object]", which is not a valid one.
    with_headers = """url => {
        try { new WebSocket(url, {headers: {Authorization: "Bearer x"}}); }
        catch (error) { return error.name; }
    }"""
    assert page.evaluate(with_headers, f"{server.ws_url}/chat/main") == "SyntaxError"
    server.wait_for('"WebSocket /chat/main" 403')
    page.close()


@pytest.mark.verifies("secure/index.html")
def test_other_origins_of_the_site_get_the_cookie_other_sites_do_not(
    serve, browser
) -> None:
    port = free_port()
    with (
        other_page("127.0.0.1") as sibling,  # Same site: 127.0.0.1.
        other_page("127.0.0.1") as allowed_sibling,
        other_page("127.0.0.2") as other_site,  # Another site.
    ):
        server = chat(
            serve,
            port=port,
            CHAT_ORIGINS=f"http://127.0.0.1:{port} {allowed_sibling} {other_site}",
        )
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, server)
        url = f"{server.ws_url}/chat/main"
        # Allowed, the sibling page is in: the browser sent it our cookie.
        page.goto(allowed_sibling)
        assert page.evaluate(OPEN_SOCKET, url) == "open"
        # That is why a sibling must pass the Origin check too.
        page.goto(sibling)
        assert page.evaluate(OPEN_SOCKET, url) == 1006
        server.wait_for(rf"refused: origin '{sibling}' is not allowed")
        # Another site's page is allowed by Origin here, but gets no cookie.
        page.goto(other_site)
        assert page.evaluate(OPEN_SOCKET, url) == 1006
        server.wait_for(r"refused: no valid session")
        context.close()


FORM = """<form method="post" enctype="{enctype}" action="{action}">
<input name='{{"name":"mallory","x":"' value='"}}'><button>Win a prize</button>
</form>"""


@pytest.mark.parametrize(
    ("allowed", "enctype"),
    [(False, "text/plain"), (True, "text/plain"), (True, "application/json")],
)
def test_a_form_on_another_site_cannot_sign_anyone_in(
    serve, browser, allowed: bool, enctype: str
) -> None:
    port = free_port()
    form = FORM.format(action=f"http://127.0.0.1:{port}/login", enctype=enctype)
    with other_page("127.0.0.2", form) as evil:
        origins = f"http://127.0.0.1:{port} {evil if allowed else ''}"
        chat(serve, port=port, CHAT_ORIGINS=origins)
        context = browser.new_context()
        page = context.new_page()
        page.goto(evil)
        with page.expect_navigation() as sent:
            page.get_by_role("button", name="Win a prize").click()
        response = sent.value
        assert response is not None
        # Refused by the Origin check; or, with Origin allowed, by Content-Type.
        assert response.status == (415 if allowed else 403)
        sent_type = response.request.headers["content-type"]
        if enctype == "text/plain":  # A body that parses as JSON,
            assert sent_type == "text/plain"
            assert json.loads(response.request.post_data or "") == {
                "name": "mallory",
                "x": "=",
            }
        else:  # but never the JSON type: forms know no such enctype.
            assert sent_type == "application/x-www-form-urlencoded"
        assert context.cookies() == []
        context.close()
