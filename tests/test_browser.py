"""Section 6: the chat page, served by `python snippets/chat.py`, in Chromium."""

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect
from support import commands, say, snippet


@pytest.mark.verifies("static/index.html")
def test_two_pages_chat_and_see_the_server_go(serve, browser) -> None:
    server = serve(commands("chat.console")[0])
    pages: list[Page] = []
    for speaker, text in [(0, "one"), (1, "two"), (0, "three")]:
        if speaker == len(pages):  # A newcomer opens the page, then speaks.
            pages.append(browser.new_page())
            pages[speaker].goto(f"{server.http_url}/static/index.html")
            expect(pages[speaker].locator("#status")).to_have_text("Connected")
        say(pages[speaker], text)
        for page in pages:  # Everyone in the room, the speaker included.
            expect(page.locator("#messages li").last).to_have_text(text)
    expect(pages[0].locator("#messages li")).to_have_text(["one", "two", "three"])
    expect(pages[1].locator("#messages li")).to_have_text(["two", "three"])
    server.stop()
    for page in pages:
        expect(page.locator("#status")).to_have_text("Connection closed (code 1012)")
        expect(page.get_by_placeholder("Type, then press Enter")).to_be_disabled()
        page.close()


@pytest.mark.verifies("static/index.html")
def test_page_over_https_uses_wss_and_shows_html_as_text(browser) -> None:
    """No TLS server needed: Playwright answers for the https:// host."""
    page = browser.new_page()
    urls: list[str] = []

    def room(ws: WebSocketRoute) -> None:
        urls.append(ws.url)
        ws.send("<b>not bold</b>")  # A message that is also HTML.

    page.route_web_socket("**/chat", room)
    page.route(
        "https://chat.example/static/index.html",
        lambda route: route.fulfill(
            body=snippet("static/index.html"), content_type="text/html"
        ),
    )
    page.goto("https://chat.example/static/index.html")
    expect(page.locator("#messages li")).to_have_text(["<b>not bold</b>"])
    expect(page.locator("#messages b")).to_have_count(0)
    assert urls == ["wss://chat.example/chat"]
    page.close()
