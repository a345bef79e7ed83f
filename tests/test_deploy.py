"""The chat behind nginx (snippets/nginx.conf), over TLS, as deployed."""

from __future__ import annotations

import json
import re
import shlex
import ssl
from contextlib import ExitStack
from pathlib import Path

import pytest
import uvicorn
from chatroom import MAX_PER_ADDRESS
from nginx_server import PUBLIC, Nginx
from playwright.sync_api import Error, expect
from redis import Redis as SyncRedis
from support import TIMEOUT, Server, commands, free_port, say, snippet
from test_chatroom_redis import app, speak, texts
from uvicorn.main import main
from websockets.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
)
from websockets.sync.client import ClientConnection, connect

PING = json.dumps({"type": "ping"})


def deployed(serve, redis, nginx, **settings: str) -> tuple[Nginx, list[Server]]:
    """Two chatroom_redis.py processes on one Redis, and nginx in front."""
    apps = [app(serve, redis), app(serve, redis)]
    return nginx((apps[0].port, apps[1].port), **settings), apps


def member(
    stack: ExitStack, proxy: Nginx, room: str = "main", **options
) -> ClientConnection:
    """A Python client over wss://, trusting the test CA only; in once a ping
    is answered."""
    ws = stack.enter_context(
        connect(
            f"{proxy.ws_url}/chat/{room}",
            ssl=proxy.tls.client_context(),
            server_hostname=PUBLIC,
            **options,
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


def https_browser(browser, *proxies: Nginx):
    """Chromium that resolves the public name to nginx, and trusts its
    certificate, and only it, by the hash of its public key."""
    return browser.launch_with(
        f"--host-resolver-rules=MAP {PUBLIC} 127.0.0.1",
        "--ignore-certificate-errors-spki-list="
        + ",".join(proxy.tls.spki for proxy in proxies),
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


def test_uvicorn_pings_every_20_s_and_the_signed_in_page_every_10_s() -> None:
    assert uvicorn.Config(app=None).ws_ping_interval == 20.0
    assert "const HEARTBEAT = 10_000;" in snippet("secure/index.html")
    assert "proxy_read_timeout 60s;" in snippet("nginx.conf")


def pinging(serve, redis, seconds: str) -> Server:
    """chatroom_redis.py under the uvicorn command, with a ping interval."""
    port = free_port()
    line = commands("chatroom_redis_workers.console")[0].replace(" --workers 2", "")
    command = f"{line.replace('5042', str(port))} --ws-ping-interval {seconds}"
    return serve(command, port, REDIS_URL=redis.url)


def test_pings_keep_a_silent_socket_open_past_the_proxy_timeout(
    serve, redis, nginx
) -> None:
    """20 s and 60 s, shortened in proportion: pings every 1 s, 3 s timeout."""
    server = pinging(serve, redis, "1")
    proxy = nginx((server.port, server.port), proxy_read_timeout="3s")
    with ExitStack() as stack:
        ann = member(stack, proxy, ping_interval=None)  # The client never pings.
        with pytest.raises(TimeoutError):  # 4 s of silence: no message, no close.
            ann.recv(timeout=4)
        ann.send(PING)
        assert json.loads(ann.recv(timeout=TIMEOUT)) == {"type": "pong"}


def test_a_proxy_timeout_below_the_ping_interval_cuts_the_socket(
    serve, redis, nginx
) -> None:
    server = pinging(serve, redis, "3")
    proxy = nginx((server.port, server.port), proxy_read_timeout="1s")
    with ExitStack() as stack:
        ann = member(stack, proxy, ping_interval=None)
        with pytest.raises(ConnectionClosedError) as cut:
            ann.recv(timeout=TIMEOUT)
        assert cut.value.rcvd is None  # Cut: no close frame came.


def secure_app(serve, port: int, proxy: Nginx) -> Server:
    """chatroom_secure.py on port, allowing the public https:// origin only."""
    command = commands("chatroom_secure.console")[0]
    return serve(command, port, CHAT_ORIGINS=f"https://{PUBLIC}:{proxy.port}")


def sign_in(page, proxy: Nginx, name: str) -> None:
    page.goto(f"{proxy.url}/static/index.html")
    page.get_by_placeholder("Your name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#status")).to_have_text("Connected")


@pytest.mark.verifies("scaled/index.html", "secure/index.html", "nginx.conf")
def test_below_the_ping_interval_only_the_heartbeat_page_stays(
    serve, redis, nginx, browser
) -> None:
    """proxy_read_timeout 15 s: under uvicorn's 20 s pings, over the page's
    10 s heartbeat. Both programs run with their defaults."""
    basic = deployed(serve, redis, nginx, proxy_read_timeout="15s")[0]
    secure_port = free_port()
    secure = nginx((secure_port, secure_port), proxy_read_timeout="15s")
    secure_app(serve, secure_port, secure)
    trusting = https_browser(browser, basic, secure)
    try:
        signed_in = trusting.new_page()
        sockets: list = []
        signed_in.on("websocket", lambda ws: sockets.append(ws))
        sign_in(signed_in, secure, "ann")
        plain = trusting.new_page()
        plain.goto(f"{basic.url}/static/index.html")
        expect(plain.locator("#status")).to_have_text("Connected")
        expect(plain.locator("#status")).to_have_text(
            "Connection closed (code 1006)", timeout=2 * TIMEOUT * 1000
        )
        expect(signed_in.locator("#status")).to_have_text("Connected")
        assert len(sockets) == 1 and not sockets[0].is_closed()  # The same one.
    finally:
        trusting.close()


def test_the_app_sees_the_client_address_nginx_forwards(serve, redis, nginx) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: from nginx on
    this machine. The client connects from 127.0.0.2, another loopback address."""
    proxy, apps = deployed(serve, redis, nginx)
    with ExitStack() as stack:
        for _ in apps:  # One connection to each process.
            member(stack, proxy, source_address=("127.0.0.2", 0))
    for server in apps:
        server.wait_for(r'127\.0\.0\.2:\d+ - "WebSocket /chat/main" \[accepted\]')


def test_with_the_proxy_untrusted_everyone_is_nginx(serve, redis, nginx) -> None:
    """forwarded_allow_ips names another proxy: X-Forwarded-For is ignored, and
    every client has nginx's address, and shares its per-address limit."""
    command = commands("chatroom_redis.console")[1].removeprefix("PORT=5042 ")
    apps = [
        serve(command, REDIS_URL=redis.url, FORWARDED_ALLOW_IPS="10.0.0.1")
        for _ in range(2)
    ]
    proxy = nginx((apps[0].port, apps[1].port))
    with ExitStack() as stack:
        for _ in apps:
            member(stack, proxy, source_address=("127.0.0.2", 0))
    for server in apps:
        server.wait_for(r'127\.0\.0\.1:\d+ - "WebSocket /chat/main" \[accepted\]')
        assert "127.0.0.2" not in server.output


def test_the_public_origin_is_the_allowed_one(serve, nginx) -> None:
    port = free_port()
    proxy = nginx((port, port))
    server = secure_app(serve, port, proxy)
    for origin in ("https://evil.example", f"http://127.0.0.1:{port}"):
        with pytest.raises(InvalidStatus) as refused:
            member(ExitStack(), proxy, origin=origin)
        assert refused.value.response.status_code == 403
        server.wait_for(rf"refused: origin '{re.escape(origin)}' is not allowed")
    # The public origin passes that check, and only lacks a session:
    with pytest.raises(InvalidStatus):
        member(ExitStack(), proxy, origin=f"https://{PUBLIC}:{proxy.port}")
    server.wait_for(r"refused: no valid session")


def test_by_default_the_app_allows_only_its_own_address(serve, nginx) -> None:
    port = free_port()
    proxy = nginx((port, port))
    server = serve(commands("chatroom_secure.console")[0], port)  # No CHAT_ORIGINS.
    public = f"https://{PUBLIC}:{proxy.port}"
    with pytest.raises(InvalidStatus):
        member(ExitStack(), proxy, origin=public)
    server.wait_for(rf"refused: origin '{re.escape(public)}' is not allowed")


@pytest.mark.verifies("secure/index.html")
def test_a_signed_in_page_on_the_public_origin_chats(serve, nginx, browser) -> None:
    port = free_port()
    proxy = nginx((port, port))
    secure_app(serve, port, proxy)
    trusting = https_browser(browser, proxy)
    try:
        page = trusting.new_page()
        sign_in(page, proxy, "ann")
        cookies = page.context.cookies()  # Signed in over https, through nginx:
        assert [c["secure"] for c in cookies if c["name"] == "chat_session"] == [True]
        say(page, "hello from the public origin")
        expect(page.locator("#messages li").last).to_have_text(
            "ann: hello from the public origin"
        )
    finally:
        trusting.close()


def test_a_reload_keeps_open_sockets_on_the_old_worker(serve, redis, nginx) -> None:
    proxy, _ = deployed(serve, redis, nginx)
    old = re.search(r"start worker process (\d+)", proxy.output)[1]
    with ExitStack() as stack:
        ann, ben = member(stack, proxy), member(stack, proxy)
        proxy.reload()
        proxy.wait_for(rf"\b{old}#\d+: gracefully shutting down")
        speak(ann, "after the reload")  # Through the old worker, still open.
        assert texts(ann, 1) == texts(ben, 1) == ["after the reload"]
        with ExitStack() as later:  # A new connection: a new worker takes it.
            cat = member(later, proxy)
            speak(cat, "new worker")
            assert texts(ann, 1) == texts(cat, 1) == ["new worker"]
        assert f"worker process {old} exited" not in proxy.output
    proxy.wait_for(rf"worker process {old} exited with code 0")  # Once they close.


def restarted(serve, redis, server: Server) -> Server:
    """Stop a process (its members hear 1001), then start it on its port again."""
    server.stop()
    command = commands("chatroom_redis.console")[1].removeprefix("PORT=5042 ")
    again = serve(command, server.port, REDIS_URL=redis.url)
    again.wait_for(r"subscribed to heartbeat:")
    return again


def moved(stack: ExitStack, proxy: Nginx, people: dict, text: str) -> set[str]:
    """Who heard 1001 instead of text: they reconnect, through nginx."""
    away = set()
    for name, ws in people.items():
        try:
            assert texts(ws, 1) == [text]
        except ConnectionClosedOK as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1001
            away.add(name)
            people[name] = member(stack, proxy)
    return away


@pytest.mark.verifies("scaled/index.html")
def test_a_rolling_restart_moves_everyone_and_loses_what_was_said_meanwhile(
    serve, redis, nginx, browser
) -> None:
    proxy, (first, second) = deployed(serve, redis, nginx)
    room = SyncRedis.from_url(redis.url)  # Says things as a process would.

    def publish(text: str) -> None:
        room.publish("chat:main", json.dumps({"type": "message", "text": text}))

    trusting = https_browser(browser, proxy)
    try:
        page = trusting.new_page()
        page.goto(f"{proxy.url}/static/index.html")
        expect(page.locator("#status")).to_have_text("Connected")
        with ExitStack() as stack:
            stack.callback(room.close)
            people = {name: member(stack, proxy) for name in ("ann", "ben", "cat")}
            first.stop()  # Its members hear 1001 before it exits.
            publish("while the first restarts")
            away = moved(stack, proxy, people, "while the first restarts")
            assert away and away != set(people)  # nginx had spread them out.
            first = restarted(serve, redis, first)
            second.stop()  # Now everyone is on the second: all move.
            publish("while the second restarts")
            assert moved(stack, proxy, people, "while the second restarts") == set(
                people
            )
            second = restarted(serve, redis, second)
            # The basic page does not reconnect: it says 1001, and a reload
            # connects it again, with an empty list.
            expect(page.locator("#status")).to_have_text(
                "Connection closed (code 1001)"
            )
            page.reload()
            expect(page.locator("#status")).to_have_text("Connected")
            speak(people["ann"], "after the deploy")
            for ws in people.values():
                assert texts(ws, 1) == ["after the deploy"]
            expect(page.locator("#messages li")).to_have_text(["after the deploy"])
    finally:
        trusting.close()


def test_try_it_copy_check_reload(serve, redis, nginx) -> None:
    """The page's commands: copied where Debian's nginx.conf includes it,
    checked with nginx -t, and used after nginx -s reload."""
    copy, check, reload = (shlex.split(line) for line in commands("deploy.console"))
    assert copy == ["sudo", "cp", "snippets/nginx.conf", "/etc/nginx/conf.d/chat.conf"]
    debian = Path("/etc/nginx/nginx.conf")  # Includes every file of conf.d:
    assert "include /etc/nginx/conf.d/*.conf;" in debian.read_text()
    assert check == ["sudo", "nginx", "-t"]
    assert reload == ["sudo", "nginx", "-s", "reload"]
    proxy, _ = deployed(serve, redis, nginx)
    report = proxy.check()
    assert "syntax is ok" in report and "test is successful" in report
    proxy.reload()
    proxy.wait_for(r"reconfiguring")
    with ExitStack() as stack:
        ann = member(stack, proxy)
        speak(ann, "deployed")
        assert texts(ann, 1) == ["deployed"]


def test_without_the_upgrade_headers_no_websocket_gets_through(
    serve, redis, nginx
) -> None:
    drop = ("proxy_set_header Upgrade", "proxy_set_header Connection")
    proxy = deployed(serve, redis, nginx, drop=drop)[0]
    with pytest.raises(InvalidStatus) as refused:
        member(ExitStack(), proxy)
    assert refused.value.response.status_code != 101


def test_uvicorn_upgrades_even_a_proxied_http_1_0_request(serve, redis, nginx) -> None:
    """Without proxy_http_version, nginx speaks HTTP/1.0 upstream; uvicorn
    upgrades anyway. The line stays, for servers that hold to HTTP/1.1."""
    proxy = deployed(serve, redis, nginx, drop=("proxy_http_version",))[0]
    with ExitStack() as stack:
        ann = member(stack, proxy)
        speak(ann, "over 1.0")
        assert texts(ann, 1) == ["over 1.0"]


def test_uvicorn_trusts_forwarded_headers_from_this_machine_only() -> None:
    config = uvicorn.Config(app=None)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == "127.0.0.1,::1"
    options = {option for param in main.params for option in param.opts}
    assert "--forwarded-allow-ips" in options


def test_behind_an_untrusted_proxy_everyone_shares_one_address_limit(
    serve, redis, nginx
) -> None:
    command = commands("chatroom_redis.console")[1].removeprefix("PORT=5042 ")
    server = serve(command, REDIS_URL=redis.url, FORWARDED_ALLOW_IPS="10.0.0.1")
    proxy = nginx((server.port, server.port))
    with ExitStack() as stack:
        for n in range(MAX_PER_ADDRESS):  # Each from an address of its own.
            member(stack, proxy, source_address=(f"127.0.0.{n + 2}", 0))
        with pytest.raises(InvalidStatus) as refused:
            member(stack, proxy, source_address=("127.0.1.1", 0))
        assert refused.value.response.status_code == 403


def test_worker_shutdown_timeout_bounds_what_a_reload_keeps(
    serve, redis, nginx
) -> None:
    proxy = deployed(serve, redis, nginx, main="worker_shutdown_timeout 1s;")[0]
    with ExitStack() as stack:
        ann = member(stack, proxy)
        proxy.reload()
        with pytest.raises(ConnectionClosedError) as cut:
            ann.recv(timeout=TIMEOUT)
        assert cut.value.rcvd is None
