"""Helpers the tests share: snippet files, shown commands, real servers.

One module, imported by conftest.py and the tests alike, so the record of which
test used which snippet is one record."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "snippets"
IN_CI = os.environ.get("CI", "").lower() == "true"
TIMEOUT = 20  # Seconds to wait for an event before a test fails; never slept.
RESULTS = ROOT / "build" / "verified.json"  # Read by docs/_ext/snippet_contract.py.

# Which tests used which snippet file: Python files through coverage contexts,
# the others through the helpers below and the `verifies` marker.
used: defaultdict[str, set[str]] = defaultdict(set)
current = {"test": ""}  # The node id of the running test.


def digests(root: Path = SNIPPETS) -> dict[str, str]:
    """The sha256 of each file in root, by its path relative to root."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


SEEN = digests()  # Taken on import, before any test: the content the tests saw.


def write_results(
    path: Path, used: Mapping[str, Iterable[str]], seen: Mapping[str, str] = SEEN
) -> None:
    """Write which tests used each snippet, and the hash of the content they
    used: {"echo.py": {"sha256": "...", "tests": [...]}}. The site says
    "Verified by" only while a file still has that hash."""
    results = {
        name: {"sha256": seen[name], "tests": sorted(used[name])}
        for name in sorted(used)
        if name in seen
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")


@contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold a lock on the file lock while the block runs: of the xdist workers
    that need one thing built, one builds it while the others wait."""
    with lock.open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # Released when the file closes.
        yield


def without_coverage() -> dict[str, str]:
    """This environment, minus what makes coverage measure a Python subprocess."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def snippet(name: str) -> str:
    """The text of a file in snippets/, exactly as the page shows it."""
    if current["test"]:
        used[name].add(current["test"])
    return (SNIPPETS / name).read_text(encoding="utf-8")


def commands(console: str) -> list[str]:
    """The commands a console snippet tells the reader to type."""
    lines = snippet(console).splitlines()
    found = [line.removeprefix("$ ") for line in lines if line.startswith("$ ")]
    assert found, f"snippets/{console} shows no '$ ' command"
    return found


def argv(command: str, python: str = sys.executable) -> list[str]:
    """A shown command as argv, run by python (this interpreter) where it
    says `python`, as it would be in a reader's activated virtual environment."""
    words = shlex.split(command)
    for word in words:
        if word.startswith("snippets/") and current["test"]:
            used[word.removeprefix("snippets/")].add(current["test"])
    return [python if word == "python" else word for word in words]


def free_port() -> int:
    """A free port below the range the kernel hands to clients' own sockets.

    A port that bind(0) picks lies in that range, and a test client's
    connection can take it before the server binds it ("address already in
    use"); a port below it is only ever taken by a bind that names it.
    """
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ranges.read_text().split()[0]) if ranges.exists() else 32768
    while True:
        port = random.randrange(10_081, low)  # 10080 is the highest Chromium refuses.
        with socket.socket() as sock:
            try:
                sock.bind(("", port))  # Every interface, as servers with PORT bind.
            except OSError:
                continue  # Taken: try another.
            return port


class Watched:
    """A process a test started, whose output the test reads and waits on."""

    process: subprocess.Popen[str]

    def __init__(self, name: str) -> None:
        self.name = name  # How a failure names it.
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def watch(self, argv: list[str], **options) -> None:
        """Start argv in a process group of its own, and read what it prints."""
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Its own process group, killed as one.
            **options,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()  # EOF: the process has gone.

    def wait_for(self, pattern: str, start: int = 0) -> str:
        """Block until a line from the start-th on matches pattern; return it."""
        regex = re.compile(pattern)
        seen = start

        def match() -> str | None:
            nonlocal seen
            for line in self.lines[seen:]:
                seen += 1
                if regex.search(line):
                    return line
            return None

        with self._changed:
            found = self._changed.wait_for(
                lambda: match() or not self._reader.is_alive(), TIMEOUT
            )
            line = found if isinstance(found, str) else None
        if line is None:
            pytest.fail(
                f"{self.name} never printed /{pattern}/; its output:\n{self.output}"
            )
        return line

    def end(self, how: signal.Signals) -> int:
        """Send how; kill the process group if it has not ended in time."""
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(TIMEOUT)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.process.returncode


class Server(Watched):
    """A snippet server started with its console command and PORT set."""

    def __init__(
        self,
        command: str,
        env: dict[str, str],
        port: int = 0,
        ready: str = r"Uvicorn running on",  # What it prints once it listens.
        *,
        cwd: Path = ROOT,  # The folder and interpreter of a reader's own copy.
        python: str = sys.executable,
    ) -> None:
        super().__init__(f"`{command}`")
        self.cwd, self.python = cwd, python
        self.command = command
        for _ in range(3):  # A port picked as free can be taken before the bind.
            self.port = port or free_port()
            self.env = {**os.environ, **env, "PORT": str(self.port)}
            self.lines = []
            self.watch(argv(command, python), cwd=cwd, env=self.env)
            try:
                self.wait_for(ready)
                return
            except pytest.fail.Exception:
                self.stop()  # A server that did not start is not left running.
                if port or "address already in use" not in self.output:
                    raise
        pytest.fail(f"`{command}` found no free port in three tries")

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        """Stop as a reader does, with Ctrl+C; kill the group if that hangs."""
        return self.end(signal.SIGINT)


def run(command: str, server: Server) -> subprocess.CompletedProcess[str]:
    """Run a shown client command against server, as the reader would."""
    return subprocess.run(
        argv(command.replace("5042", str(server.port)), server.python),
        cwd=server.cwd,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def raw_websocket(
    server: Server, path: str, *, receive_buffer: int = 0
) -> socket.socket:
    """A bare socket after a WebSocket handshake: it does only what a test says.

    Nothing reads from it unless the test does, so it can play a client that
    never reads, or send frames no well-behaved library would.
    """
    sock = socket.socket()
    if receive_buffer:  # Set before connecting, so the window starts small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", server.port))
    sock.settimeout(TIMEOUT)
    head = handshake(
        sock,
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
    )
    assert head.startswith("HTTP/1.1 101"), head
    return sock


def handshake(sock: socket.socket, request: str) -> str:
    """Send an HTTP request; return the response head, leaving what follows."""
    sock.sendall(request.encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)  # One byte at a time: frames after it stay unread.
        assert byte, f"closed during the handshake: {head!r}"
        head += byte
    return head.decode()


def send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """Send one final, masked client frame (zero mask: payload as is)."""
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    elif len(payload) < 1 << 16:
        header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + len(payload).to_bytes(8, "big")
    sock.sendall(header + b"\0\0\0\0" + payload)


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one unmasked server frame: its opcode and payload."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the server closed the TCP connection mid-frame"
            data += chunk
        return data

    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    return first & 0x0F, exactly(length)


def close_code(sock: socket.socket) -> int:
    """The code of the close frame the server sends next (skipping others)."""
    while True:
        opcode, payload = read_frame(sock)
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big")


def say(page, text: str) -> None:
    """Type text into a chat page's input and press Enter, as a reader does."""
    page.get_by_placeholder("Type, then press Enter").fill(text)
    page.keyboard.press("Enter")


def refused_by_app(client, path: str, **options) -> int:
    """The close code with which the app behind a TestClient refuses path."""
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(path, **options):
            pass  # Never reached: the handshake is refused.
    return refused.value.code


def closed_by_app(session) -> tuple[int, str | None]:
    """The close code and reason a TestClient session receives next."""
    with pytest.raises(WebSocketDisconnect) as closed:
        session.receive_text()
    return closed.value.code, closed.value.reason


def closed_by_stopping(server: Server, ws) -> int:
    """Stop server as a reader does; the close code its client ws receives."""
    assert server.stop() == 0
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code
