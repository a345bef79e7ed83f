"""Fixtures and hooks: real servers, a real browser, and what each test verified."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import coverage
import pytest
from nginx_server import INSTALL as INSTALL_NGINX
from nginx_server import Nginx, Tls, nginx_binary
from redis_server import INSTALL, RedisServer, redis_binary
from support import IN_CI, RESULTS, ROOT, SNIPPETS, Server, current, used, write_results


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    current["test"] = item.nodeid
    for marker in item.iter_markers("verifies"):
        for name in marker.args:
            used[name].add(item.nodeid)
    if item.path.is_relative_to(SNIPPETS):  # A snippet that is a test itself.
        used[item.path.relative_to(SNIPPETS).as_posix()].add(item.nodeid)
    cov = coverage.Coverage.current()
    if cov:
        cov.switch_context(item.nodeid)
    try:
        return (yield)
    finally:
        current["test"] = ""
        if cov:
            cov.switch_context("")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After a passing run under coverage, say which tests verified each file."""
    cache = getattr(session.config, "cache", None)
    if cache and took and not hasattr(session.config, "workeroutput"):
        cache.set(DURATIONS, {**cache.get(DURATIONS, {}), **took})  # For next time.
    cov = coverage.Coverage.current()
    if cov is None:  # Only `make doctest` measures, and so only it may tell.
        return
    if not session.config.pluginmanager.has_plugin("dsession"):  # Ran tests here.
        add_contexts(cov)
    if hasattr(session.config, "workeroutput"):  # An xdist worker: hand it over.
        session.config.workeroutput["used"] = {k: sorted(v) for k, v in used.items()}
        return
    RESULTS.unlink(missing_ok=True)
    if exitstatus != 0:
        return
    write_results(RESULTS, used)


def add_contexts(cov: coverage.Coverage) -> None:
    """Add to `used` the tests that ran each line of a snippet, in this process."""
    data = cov.get_data()
    for filename in data.measured_files():
        path = Path(filename)
        if path.is_relative_to(SNIPPETS):
            for contexts in data.contexts_by_lineno(filename).values():
                used[path.relative_to(SNIPPETS).as_posix()].update(
                    c for c in contexts if c
                )


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist's controller: merge what a finished worker's tests used."""
    for name, tests in getattr(node, "workeroutput", {}).get("used", {}).items():
        used[name].update(tests)


DURATIONS = "tutorial/durations"  # What each test took last time, in seconds.
took: defaultdict[str, float] = defaultdict(float)  # And this time.


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    took[report.nodeid] += report.duration  # Setup, call and teardown.


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Start the longest tests first, spread over the xdist workers.

    --dist worksteal first hands each worker an equal, contiguous slice of
    the tests, and later moves tests from the end of a busy worker's queue
    to an idle one. So the slices are made to take equally long by last
    run's durations, each with its longest tests first: a test that mostly
    waits (on a timeout, a build) then waits while the short ones run.
    The order changes nothing else; without durations it stays as collected.
    """
    cache = getattr(config, "cache", None)
    last = cache.get(DURATIONS, {}) if cache else {}
    if not last:
        return
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    sizes, left = [], len(items)
    for worker in range(workers):  # As worksteal cuts the slices.
        sizes.append(left // (workers - worker))
        left -= sizes[-1]
    typical = sorted(last.values())[len(last) // 2]  # For a test new since.
    seconds = {item.nodeid: last.get(item.nodeid, typical) for item in items}
    slices: list[list] = [[] for _ in sizes]
    loads = [0.0] * workers
    for item in sorted(items, key=lambda item: -seconds[item.nodeid]):
        room = [w for w in range(workers) if len(slices[w]) < sizes[w]]
        emptiest = min(room, key=lambda w: loads[w])
        slices[emptiest].append(item)
        loads[emptiest] += seconds[item.nodeid]
    items[:] = [item for part in slices for item in part]


@pytest.fixture
def serve() -> Iterator:
    """Start snippet servers by their console command; all stop after the test."""
    servers: list[Server] = []

    def start(
        command: str,
        port: int = 0,
        ready: str = r"Uvicorn running on",
        *,
        cwd: Path = ROOT,
        python: str | None = None,
        **env: str,
    ) -> Server:
        """Start command; port=0 picks a free one, as a fresh server would.

        ready: what it prints once it listens. cwd and python: the folder and
        interpreter of a reader's own copy."""
        server = Server(
            command, env, port, ready, cwd=cwd, python=python or sys.executable
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def no_running_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Between its calls, Playwright's sync API leaves its event loop marked
    as running on this thread, so asyncio.run() refuses in every later test
    of the worker that started the browser; in tests without the browser,
    no loop runs, whatever ran before them."""
    loop = asyncio._get_running_loop()
    if loop is None or "browser" in request.fixturenames:
        yield
        return
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Headless Chromium: Debian's when installed, else Playwright's own."""
    from playwright.sync_api import Error, sync_playwright

    system = Path("/usr/bin/chromium")
    executable = system if system.exists() else None
    args = ["--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=args)
        except Error as error:
            if IN_CI:
                raise
            reason = error.message.splitlines()[0]
            pytest.skip(
                "no Chromium to drive: `apt-get install chromium` (Debian) or "
                f"`.venv/bin/playwright install chromium` ({reason})"
            )
        # Another Chromium, with more command-line switches, for the test that
        # needs them (the caller closes it): browser.launch_with("--switch").
        browser.launch_with = lambda *more: playwright.chromium.launch(
            executable_path=executable, args=[*args, *more]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis for the whole session; tests may restart or freeze it."""
    binary = redis_binary()
    if binary is None:
        if IN_CI:
            pytest.fail(INSTALL)
        pytest.skip(INSTALL)
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Start snippets/nginx.conf in front of two app ports, over TLS with a
    test CA; every nginx started stops after the test."""
    binary = nginx_binary()
    if binary is None:
        if IN_CI:
            pytest.fail(INSTALL_NGINX)
        pytest.skip(INSTALL_NGINX)
    tls = Tls(tmp_path_factory.mktemp("tls"))
    started: list[Nginx] = []

    def start(apps: tuple[int, int], **options) -> Nginx:
        """options: main= directives for the main file, drop= lines of the
        site file to leave out, and new values, as proxy_read_timeout="2s"."""
        directory = tmp_path_factory.mktemp("nginx")
        proxy = Nginx(binary, directory, apps, tls, **options)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
