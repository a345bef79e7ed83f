"""Interactive clients, run in a terminal and read off its screen.

A shown session (a ``.console`` snippet) is the screen a reader ends up with:
the ``$ `` command, then what the program printed, with the lines the reader
typed after its ``> `` prompt. ``converse`` runs such sessions for real: each
in a pseudo-terminal, so the line discipline echoes what is typed and Ctrl+D
means end of input, rendered by a terminal emulator (pyte), so the cursor
movements of ``python -m websockets`` land where a real terminal puts them.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Callable

import pyte
import pytest
from support import TIMEOUT, Server, argv, snippet

COLUMNS, ROWS = 100, 40
PROMPT = ">"  # The client's "> " prompt, as a screen line without its space.


def session(name: str) -> tuple[str, list[str]]:
    """The command a console snippet shows, and the screen it shows."""
    lines = snippet(name).splitlines()
    assert lines and lines[0].startswith("$ "), f"{name} starts with no command"
    return lines[0].removeprefix("$ "), lines


class Terminal:
    """One shown command, run against server in a terminal of its own."""

    def __init__(self, command: str, server: Server, changed: threading.Condition):
        self.port = str(server.port)
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.stream.feed(f"$ {command}\r\n".encode())  # What the shell echoed.
        self.changed = changed  # Notified whenever the screen changes.
        self.master, replica = pty.openpty()
        size = struct.pack("HHHH", ROWS, COLUMNS, 0, 0)
        fcntl.ioctl(replica, termios.TIOCSWINSZ, size)
        self.process = subprocess.Popen(
            argv(command.replace("5042", self.port), server.python),
            cwd=server.cwd,
            env={**server.env, "TERM": "xterm"},
            stdin=replica,
            stdout=replica,
            stderr=replica,
            start_new_session=True,
        )
        os.close(replica)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: every process on the terminal has exited.
                return
            with self.changed:
                self.stream.feed(data)
                self.changed.notify_all()

    def lines(self) -> list[str]:
        """The screen as the page shows it: 5042 where the test's port is."""
        port = f":{self.port}/"
        lines = [line.rstrip().replace(port, ":5042/") for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int | None:
        """Wait for the program to end, or end it; release the terminal."""
        try:
            return self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None  # It did not end by itself.
        finally:
            self._reader.join(TIMEOUT)
            os.close(self.master)


def converse(
    server: Server, *names: str, hang_up: bool = True, exit_code: int = 0
) -> None:
    """Replay the sessions names show, in terminals side by side.

    Each terminal starts once the previous one has connected. A line shown
    after the prompt is typed when that terminal's screen shows everything
    above it, so one reader answers what another said. With hang_up, each
    reader then ends with Ctrl+D; otherwise the server ends the conversation.
    Every program must end by itself, with exit_code, its screen as shown.
    """
    shown = [session(name) for name in names]
    changed = threading.Condition()
    terminals: list[Terminal] = []

    def wait(what: str, found: Callable[[], object]) -> object:
        with changed:
            result = changed.wait_for(found, TIMEOUT)
        if not result:
            screens = "\n\n".join("\n".join(t.lines()) for t in terminals)
            pytest.fail(f"never {what}; the screens:\n{screens}")
        return result

    try:
        todo = [
            [i for i, line in enumerate(lines) if line.startswith(PROMPT + " ")]
            for _, lines in shown
        ]
        for (command, lines), typed in zip(shown, todo, strict=True):
            terminal = Terminal(command, server, changed)
            terminals.append(terminal)
            # Connected, and ready for input if the reader is to type: the
            # prompt is drawn again below whatever arrives meanwhile.
            prompt = bool(typed or hang_up)
            wait(
                f"showed {lines[:2]!r}" + (" and a prompt" if prompt else ""),
                lambda t=terminal, r=lines[:2], p=prompt: (
                    t.lines()[:2] == r and (not p or t.lines()[-1:] == [PROMPT])
                ),
            )
        readers = list(zip(terminals, [lines for _, lines in shown], todo, strict=True))

        def whose_turn() -> tuple[Terminal, str] | None:
            for terminal, lines, typed in readers:
                if typed and terminal.lines() == [*lines[: typed[0]], PROMPT]:
                    return terminal, lines[typed.pop(0)]
            return None

        while any(todo):
            terminal, line = wait("came to a line to type", whose_turn)  # type: ignore[misc]
            terminal.type(line.removeprefix(PROMPT + " ") + "\n")
        for terminal, lines, _ in readers:
            if hang_up:
                wait(
                    "showed the last prompt",
                    lambda t=terminal, s=lines: t.lines() == [*s[:-1], PROMPT],
                )
                terminal.type("\x04")  # Ctrl+D: end of input.
    finally:
        codes = [terminal.close() for terminal in terminals]
    assert codes == [exit_code] * len(terminals), codes
    for terminal, (_, lines) in zip(terminals, shown, strict=True):
        assert terminal.lines() == lines, "\n".join(terminal.lines())
