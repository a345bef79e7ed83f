"""Every chapter's "Try it", run as a reader runs it, twice over.

Once from this repository, and once as a reader with only the website does:
the site is built, the archive that "Before you start" links to is unpacked
into an empty folder, the page's own commands make a virtual environment
there and install the requirements file from it, and every server and client
of every "Try it" runs from that folder, with that environment's Python.
(The environment is kept between runs until what it is made from changes;
see site_reader.)
The screenshot a page shows is taken here too, and every picture of the built
site must render.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from snippet_contract import snippet_files
from support import (
    ROOT,
    SNIPPETS,
    TIMEOUT,
    argv,
    commands,
    exclusive,
    run,
    say,
    snippet,
    without_coverage,
)
from terminal import converse
from websockets.sync.client import connect

SCREENSHOTS = ROOT / "build" / "screenshots"  # Read by docs/_ext/screenshots.py.
INSTALL_TIMEOUT = 600  # Seconds for a fresh virtual environment and pip install.


@dataclass
class Reader:
    """Where a reader's commands run, and what `python` means there."""

    cwd: Path
    python: str


def open_windows(browser, url: str, count: int, **options) -> list[Page]:
    pages = []
    for _ in range(count):
        page = browser.new_page(**options)
        page.goto(url)
        expect(page.locator("#status")).to_have_text("Connected")
        pages.append(page)
    return pages


def chat(
    pages: list[Page], lines: list[tuple[int, str]], names: tuple[str, ...] = ()
) -> None:
    """Each (window, text): typed there, then seen in every window, after the
    speaker's name where the room stamps one."""
    for speaker, text in lines:
        say(pages[speaker], text)
        shown = f"{names[speaker]}: {text}" if names else text
        for page in pages:
            expect(page.locator("#messages li").last).to_have_text(shown)


@pytest.mark.verifies("static/index.html")
def test_screenshot_of_two_windows_chatting(serve, browser) -> None:
    """The picture of the browser-client page: taken now, of the page as it is."""
    server = serve(commands("chat.console")[0])
    url = f"{server.http_url}/static/index.html"
    pages = open_windows(browser, url, 2, viewport={"width": 420, "height": 260})
    chat(pages, [(0, "Hi, is anyone there?"), (1, "Yes: Ben, in the other window.")])
    shots = [base64.b64encode(page.screenshot()).decode() for page in pages]
    for page in pages:
        page.close()
    shown = url.replace(f"127.0.0.1:{server.port}", "localhost:5042")  # As typed.
    windows = "".join(
        '<figure style="margin:0;border:1px solid #888;border-radius:6px;'
        'overflow:hidden;background:#fff"><figcaption style="padding:6px 10px;'
        f'background:#e4e7eb;border-bottom:1px solid #bbb">{shown}</figcaption>'
        f'<img style="display:block" src="data:image/png;base64,{shot}"></figure>'
        for shot in shots
    )
    desk = browser.new_page(viewport={"width": 900, "height": 340})
    desk.set_content(
        '<body style="margin:0;padding:16px;display:flex;gap:24px;'
        f'background:#cfd5dd;font:13px sans-serif">{windows}</body>'
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    desk.screenshot(path=SCREENSHOTS / "two-windows.png")
    desk.close()
    assert (SCREENSHOTS / "two-windows.png").stat().st_size > 0


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> Path:
    """A folder that every xdist worker of this run shares: pytest's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


# The run, the same in every xdist worker of it.
RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex


@pytest.fixture(scope="session")
def site(shared: Path) -> Path:
    """The site, built as `make html` builds it, into a folder of its own:
    once per run, by the first worker that needs it, for them all."""
    out = shared / "site"
    with exclusive(shared / "site.lock"):
        if (out / "index.html").exists():
            return out
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sphinx",
                "-b",
                "html",
                "-c",
                ROOT,
                "-W",
                "-n",
                "-q",
                ROOT / "docs/source",
                out,
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env=without_coverage(),  # Sphinx runs no snippet: measuring costs seconds.
        )
        if result.returncode != 0:
            shutil.rmtree(out, ignore_errors=True)  # The next worker tries again.
        assert result.returncode == 0, result.stderr
    return out


def linked(page: Path, name: str) -> Path:
    """The file that page links to under an address ending in name."""
    hrefs = set(re.findall(r'href="([^"#]*)"', page.read_text(encoding="utf-8")))
    (href,) = [href for href in hrefs if href.split("/")[-1] == name]
    return (page.parent / href).resolve()


def download_snippets(site: Path, folder: Path) -> None:
    """Save the archive that 'Before you start' links to into folder."""
    archive = linked(site / "before-you-start.html", "snippets.zip")
    shutil.copyfile(archive, folder / "snippets.zip")


def environment_key(typed: list[str]) -> str:
    """What a reader's virtual environment depends on: the commands that make
    it, the requirements they install, and the Python they run."""
    python3 = Path(shutil.which("python3") or "python3").resolve()
    parts = [*typed, (SNIPPETS / "requirements.txt").read_text(), str(python3)]
    parts.append(str(python3.stat().st_mtime_ns))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@pytest.fixture(scope="session")
def site_reader(site) -> Reader:
    """A reader's folder, made with the site's archive and the page's commands.

    Once per run (for every worker), the folder is emptied and the archive
    unpacked into it with the page's commands. The virtual environment in it
    is made and filled by the page's commands the first time, and again
    whenever those commands, the requirements file or Python change; runs in
    between keep it, since making it again would make the same one. The
    folder lies outside this checkout, as a reader's would: no pytest
    configuration of ours above it. One per checkout."""
    download, venv = commands("download.console"), commands("venv.console")
    key = environment_key(download + venv)
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"tutorial-reader-{checkout}"
    reader = Reader(folder, str(folder / ".venv/bin/python"))
    folder.mkdir(exist_ok=True)
    with exclusive(folder.with_suffix(".lock")):
        made, ran = folder / ".venv/made", folder / ".venv/run"
        if ran.exists() and ran.read_text() == RUN:
            return reader  # Another worker of this run unpacked it.
        kept = made.exists() and made.read_text() == key
        for entry in folder.iterdir():
            if entry.name == ".venv" and kept:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        download_snippets(site, folder)
        typed = download if kept else download + venv
        result = subprocess.run(
            ["bash", "-e", "-c", "\n".join(typed)],  # One shell, as a reader types.
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        made.write_text(key)
        ran.write_text(RUN)
    return reader


@pytest.fixture(scope="session", params=["repository", "site"])
def reader(request) -> Reader:
    if request.param == "repository":
        return Reader(ROOT, sys.executable)
    return request.getfixturevalue("site_reader")


def test_the_archive_holds_every_snippet_byte_for_byte(site_reader) -> None:
    copies = site_reader.cwd / "snippets"
    assert {p.relative_to(copies) for p in snippet_files(copies)} == {
        p.relative_to(SNIPPETS) for p in snippet_files(SNIPPETS)
    }
    for path in snippet_files(SNIPPETS):
        assert (copies / path.relative_to(SNIPPETS)).read_bytes() == path.read_bytes()


def start(serve, reader: Reader, console: str, **env: str):
    return serve(commands(console)[0], cwd=reader.cwd, python=reader.python, **env)


def test_how_websockets_work(serve, reader) -> None:
    converse(start(serve, reader, "echo.console"), "handshake.console", hang_up=False)


def test_echo_server(serve, reader) -> None:
    converse(start(serve, reader, "echo.console"), "echo_session.console")


def test_python_client(serve, reader) -> None:
    server = start(serve, reader, "echo.console")
    converse(server, "echo_client_session.console", hang_up=False)


def test_chat_room(serve, reader) -> None:
    converse(
        start(serve, reader, "chat.console"), "chat_ann.console", "chat_ben.console"
    )


def test_data_formats(serve, reader) -> None:
    server = start(serve, reader, "formats.console")
    converse(server, "formats_text.console")
    converse(server, "formats_json.console")


@pytest.mark.verifies("static/index.html")
def test_browser_client(serve, reader, browser) -> None:
    server = start(serve, reader, "chat.console")
    pages = open_windows(browser, f"{server.http_url}/static/index.html", 2)
    chat(pages, [(0, "one"), (1, "two")])
    server.stop()
    for page in pages:
        expect(page.locator("#status")).to_have_text("Connection closed (code 1012)")
        page.close()


def test_hooks(serve, reader) -> None:
    server = start(serve, reader, "hooks.console")
    converse(server, "hooks_session.console", hang_up=False)
    converse(server, "hooks_refused.console", hang_up=False, exit_code=1)


def test_lifecycle(serve, reader) -> None:
    server = start(serve, reader, "lifecycle.console")
    converse(server, "lifecycle_session.console", hang_up=False)
    server.wait_for(r"^INFO:lifecycle:open$")
    server.wait_for(r"^INFO:lifecycle:closed by the server with 1008$")
    with connect(f"{server.ws_url}/lifecycle"):  # Closes with 1000, as Ctrl+D does.
        server.wait_for(r"^INFO:lifecycle:open$")
    server.wait_for(r"^INFO:lifecycle:client left with code 1000$")


def test_testing(reader) -> None:
    result = subprocess.run(
        argv(commands("testing.console")[0], reader.python),
        cwd=reader.cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 6,
    )
    assert result.returncode == 0, result.stdout
    assert re.search(r"^=+ 4 passed in ", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.verifies("static/index.html")
def test_chat_outbox(serve, reader, browser) -> None:
    server = start(serve, reader, "chat_outbox.console")
    converse(server, "chat_ann.console", "chat_ben.console")
    pages = open_windows(browser, f"{server.http_url}/static/index.html", 2)
    chat(pages, [(0, "one"), (1, "two")])
    for page in pages:
        page.close()


@pytest.mark.verifies("room/index.html")
def test_resilient_chat(serve, reader, browser) -> None:
    server = start(serve, reader, "chatroom.console")
    converse(server, "chatroom_session.console")
    page_url = f"{server.http_url}/static/index.html"
    main = open_windows(browser, page_url, 2)
    (games,) = open_windows(browser, page_url + "#games", 1)
    expect(games.locator("h1")).to_have_text("Room games")
    chat(main, [(0, "one"), (1, "two")])
    chat([games], [(0, "only games hears this")])
    for page in main:
        expect(page.locator("#messages li")).to_have_text(["one", "two"])
    expect(games.locator("#messages li")).to_have_text(["only games hears this"])
    for page in [*main, games]:
        page.close()


@pytest.mark.verifies("secure/index.html")
def test_secure_chat(serve, reader, browser) -> None:
    server = start(serve, reader, "chatroom_secure.console")
    pages, names = [], ("ann", "ben")
    for name in names:
        page = browser.new_page()  # A context of its own: its own cookies.
        page.goto(f"{server.http_url}/static/index.html")
        page.get_by_placeholder("Your name").fill(name)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#status")).to_have_text("Connected")
        pages.append(page)
    chat(pages, [(0, "hi ben"), (1, "hi ann")], names)
    for page in pages:
        page.close()


def test_talk_to_the_room(serve, reader) -> None:
    server = start(serve, reader, "announce.console")
    results = []

    def announce() -> None:  # In a third terminal, once the client has joined.
        server.wait_for(r"room 'main' opened")
        results.append(run(commands("announce_curl.console")[0], server))

    curl = threading.Thread(target=announce)
    curl.start()
    converse(server, "announce_session.console")
    curl.join()
    (result,) = results
    shown = snippet("announce_curl.console").splitlines()
    assert result.stdout.splitlines() == shown[1:], result.stderr


def test_refusals_that_say_why(serve, reader, browser) -> None:
    server = start(serve, reader, "refusals.console")
    converse(server, "refusals_denial.console", hang_up=False, exit_code=1)
    result = run(commands("refusals_curl.console")[0], server)
    shown = snippet("refusals_curl.console").splitlines()
    assert result.stdout.splitlines() == shown[1:], result.stderr
    page = browser.new_page()
    messages: list[ConsoleMessage] = []
    page.on("console", lambda message: messages.append(message))
    page.goto(f"{server.http_url}/static/index.html")
    page.evaluate(f"async () => {{\n{snippet('refusals.js')}}}")  # As pasted.
    page.close()
    logged = [m.text.rstrip() for m in messages if m.type == "log"]
    assert logged == snippet("refusals_console.txt").splitlines()
    # The status reaches the developer's console, not the page's code.
    errors = [m.text for m in messages if m.type == "error"]
    assert any("/chat/Main' failed" in e and "code: 403" in e for e in errors)
    assert any("/deny/Main' failed" in e and "code: 404" in e for e in errors)


def test_never_block_the_event_loop(serve, reader) -> None:
    server = start(serve, reader, "blocking.console")
    results = []

    def report() -> None:  # In a third terminal, once the client has joined.
        server.wait_for(r"room 'main' opened")
        results.append(run(commands("blocking_curl.console")[0], server))

    curl = threading.Thread(target=report)
    curl.start()
    converse(server, "blocking_client.console", hang_up=False)
    curl.join()
    (result,) = results
    shown = snippet("blocking_curl.console").splitlines()
    assert result.stdout.splitlines() == shown[1:], result.stderr


def test_clients_without_cookies(serve, reader, browser) -> None:
    server = start(serve, reader, "tickets.console")
    converse(server, "tickets_client.console", hang_up=False)
    page = browser.new_page()
    messages: list[ConsoleMessage] = []
    page.on("console", lambda message: messages.append(message))
    page.goto(f"{server.http_url}/")  # Not found, but the server's origin.
    page.evaluate(f"async () => {{\n{snippet('tickets.js')}}}")  # As pasted.
    page.close()
    logged = [m.text for m in messages if m.type == "log"]
    assert logged == snippet("tickets_console.txt").splitlines()
    errors = [m.text for m in messages if m.type == "error"]
    assert any("Sec-WebSocket-Protocol' header but no response" in e for e in errors)


@pytest.mark.verifies("room/index.html")
def test_resources_per_message(serve, reader, browser, tmp_path) -> None:
    database = str(tmp_path / "chat.sqlite3")  # Not the reader's folder.
    server = start(serve, reader, "history.console", CHAT_DATABASE=database)
    url = f"{server.http_url}/static/index.html"
    (first,) = open_windows(browser, url, 1)
    chat([first], [(0, "Is anyone keeping notes?")])
    (second,) = open_windows(browser, url, 1)  # Another tab: the history.
    expect(second.locator("#messages li")).to_have_text(["Is anyone keeping notes?"])
    server.wait_for(r"kept message 1, of 'main'$")
    server.stop()  # Ctrl+C, and start it again.
    for page in (first, second):
        expect(page.locator("#status")).to_have_text("Connection closed (code 1001)")
        page.close()
    server = start(serve, reader, "history.console", CHAT_DATABASE=database)
    (third,) = open_windows(browser, f"{server.http_url}/static/index.html", 1)
    expect(third.locator("#messages li")).to_have_text(["Is anyone keeping notes?"])
    third.close()


def test_every_picture_of_the_site_renders(site, browser) -> None:
    screenshot = (SCREENSHOTS / "two-windows.png").exists()
    pictures = 0
    page = browser.new_page()
    for html in sorted(site.glob("*.html")):
        page.goto(html.as_uri())
        sources = page.eval_on_selector_all(
            "img", "images => images.map(image => image.getAttribute('src'))"
        )
        broken = page.eval_on_selector_all(
            "img",
            "images => images.filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.src)",
        )
        assert broken == [], html.name
        pictures += len(sources)
        if html.name == "browser-client.html":
            assert any(s.endswith("two-windows.png") for s in sources) == screenshot
    page.close()
    assert pictures >= 2 + screenshot  # The two diagrams, and the screenshot.


def test_troubleshooting(serve, reader) -> None:
    server = start(serve, reader, "mistakes.console")
    (command,) = commands("bye_session.console")
    assert run(command, server).stdout == "\n"  # Closed before any message.
    server.wait_for(r'Cannot call "send" once a close message has been sent\.$')
    fixed = start(serve, reader, "fixes.console")
    (command,) = commands("fixes_session.console")
    result = run(command, fixed)
    assert result.stdout == snippet("fixes_session.console").split("\n", 1)[1]


def test_server_knobs(serve, reader) -> None:
    server = start(serve, reader, "idle.console")
    converse(server, "idle_lookup.console", hang_up=False)
    converse(server, "idle_guarded.console", hang_up=False)
    server.wait_for(r"^WARNING:idle:lookup took over 1\.0 s$")


def test_metrics_and_logs(serve, reader) -> None:
    server = start(serve, reader, "chatroom_metrics.console")
    converse(server, "chatroom_session.console")
    server.wait_for(r"event=close room=main code=- reason=left ")
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=TIMEOUT) as r:
        scrape = r.read().decode()
    assert "\nchat_messages_delivered_total 3.0\n" in scrape
