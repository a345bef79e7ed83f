"""What the "Beyond the chat" recipes cost, measured with their real servers.

Starts each recipe's snippet as its page tells the reader to, with the rate
limit lifted so that bursts are not refused, and times: POST /announce with no
member and with one that never reads; the three ways to refuse a handshake;
a ticket and the connection it admits; and how many members each pool design
lets in. Writes docs/recipes.json, which conf.py renders on the four pages.
Run it with `.venv/bin/python tests/measure_recipes.py`.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "snippets"))

from measure_blocking import machine, ms  # noqa: E402
from support import (  # noqa: E402
    TIMEOUT,
    Server,
    commands,
    handshake,
    raw_websocket,
    read_frame,
)
from test_announce import post  # noqa: E402
from test_history import POOL_SIZE, member  # noqa: E402
from test_refusals import REQUEST  # noqa: E402
from tickets_client import get_ticket  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

RESULTS = ROOT / "docs" / "recipes.json"
LIFTED = {"CHAT_RATE": "100000"}  # No member is slowed down by the rate limit.
POSTS = 200  # Announcements a room is sent, in each case.
ROUNDS = 50  # Refusals of each kind, and tickets.
MEMBERS = 100  # Members of the per-message room, each sending one message.
HELD_WAIT = 2.0  # Seconds a member of the held room waits for its handshake.
BIG = json.dumps({"text": "😀" * 10_000}).encode()  # 40 kB an announcement.


def percentiles(times: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50_ms": ms(statistics.median(times)), "p99_ms": ms(cuts[98])}


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.monotonic()
        action()
        times.append(time.monotonic() - started)
    return times


def announce() -> dict:
    server = Server(commands("announce.console")[0], LIFTED)
    try:
        alone = timed(lambda: post(server, "empty", BIG), POSTS)
        with raw_websocket(server, "/chat/main", receive_buffer=4096):  # Never read.
            statuses = []
            silent = timed(lambda: statuses.append(post(server, "main", BIG)[0]), POSTS)
            cut_off = "closing a member of 'main' with 1008" in server.output
    finally:
        server.stop()
    return {
        "posts": POSTS,
        "body_bytes": len(BIG),
        "no_member": percentiles(alone),
        "silent_member": percentiles(silent),
        "silent_statuses": sorted(set(statuses)),
        "silent_member_cut_off": cut_off,
    }


def refuse(server: Server, path: str, frame: bool) -> int:
    """Knock on path; read the whole refusal; the bytes the client received."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        head = handshake(sock, REQUEST.format(path=path))
        if frame:  # A close frame: 2 bytes of header, then the code and reason.
            return len(head) + 2 + len(read_frame(sock)[1])
        length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
        received = b""
        while len(received) < length:
            chunk = sock.recv(length - len(received))
            assert chunk, "closed before the refusal was whole"
            received += chunk
    return len(head) + length


def refusal(server: Server, path: str, frame: bool) -> dict:
    """The median time to a refusal, over ROUNDS, and its size in bytes."""
    sizes = set()
    times = timed(lambda: sizes.add(refuse(server, path, frame)), ROUNDS)
    (size,) = sizes  # The same refusal every time.
    return {"median_ms": ms(statistics.median(times)), "bytes": size}


def refusals() -> dict:
    server = Server(commands("refusals.console")[0], LIFTED)
    try:
        return {
            "forbidden": refusal(server, "/chat/Main", frame=False),  # Close: 403.
            "denial": refusal(server, "/deny/Main", frame=False),
            "close": refusal(server, "/close/Main", frame=True),
        }
    finally:
        server.stop()


def tickets() -> dict:
    server = Server(commands("tickets.console")[0], LIFTED)
    times = []
    try:
        for _ in range(ROUNDS):
            started = time.monotonic()
            ticket = get_ticket(server.http_url, "ann")
            url = f"{server.ws_url}/chat/main?ticket={ticket}"
            with connect(url, open_timeout=TIMEOUT):  # Returns once accepted.
                times.append(time.monotonic() - started)
    finally:
        server.stop()
    return {"rounds": ROUNDS, "median_ms": ms(statistics.median(times))}


def per_message(server: Server) -> dict:
    started = time.monotonic()
    with ExitStack() as stack:
        people = [
            stack.enter_context(member(server, "/chat/main", f"127.0.6.{n // 20}"))
            for n in range(MEMBERS)  # 20 an address: chatroom.py's cap.
        ]
        for n, person in enumerate(people):
            person.send(json.dumps({"text": f"message {n}"}))
        heard = sum(
            1 for person in people for _ in people if person.recv(timeout=TIMEOUT)
        )
        server.wait_for(rf"kept message {MEMBERS}, of 'main'$")
    seconds = time.monotonic() - started
    waited = "waiting for a database connection" in server.output
    return {"served": heard // MEMBERS, "seconds": round(seconds, 2), "waited": waited}


def held(server: Server) -> dict:
    admitted = 0
    with ExitStack() as stack:
        for _ in range(POOL_SIZE + 1):
            try:
                stack.enter_context(
                    connect(f"{server.ws_url}/held/other", open_timeout=HELD_WAIT)
                )
            except TimeoutError:
                break
            admitted += 1
    return {"tried": POOL_SIZE + 1, "admitted": admitted, "wait_s": HELD_WAIT}


def history() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        env = {"CHAT_DATABASE": f"{folder}/chat.sqlite3", "CHAT_POOL_SIZE": "2"}
        server = Server(commands("history.console")[0], {**LIFTED, **env})
        try:
            results = {"pool": POOL_SIZE, "members": MEMBERS}
            results["per_message"] = per_message(server)
            results["held"] = held(server)
        finally:
            server.stop()
    return results


def figures(r: dict) -> dict[str, str]:
    """The figures conf.py renders as |recipes_...| on the four pages."""
    a, h = r["announce"], r["history"]
    found = {
        "recipes_measured_on": f"{r['machine']}, on {r['date']}",
        "recipes_posts": str(a["posts"]),
        "recipes_rounds": str(r["tickets"]["rounds"]),
        "recipes_ticket": f"{r['tickets']['median_ms']} ms",
        "recipes_pool": str(h["pool"]),
        "recipes_members": str(h["members"]),
        "recipes_per_message_served": str(h["per_message"]["served"]),
        "recipes_per_message_s": f"{h['per_message']['seconds']} s",
        "recipes_held_tried": str(h["held"]["tried"]),
        "recipes_held_admitted": str(h["held"]["admitted"]),
        "recipes_held_wait": f"{h['held']['wait_s']} s",
    }
    for case in ("no_member", "silent_member"):
        for cut in ("p50", "p99"):
            found[f"recipes_{case}_{cut}"] = f"{a[case][cut + '_ms']} ms"
    for way, refusal in r["refusals"].items():
        found[f"recipes_{way}_ms"] = f"{refusal['median_ms']} ms"
        found[f"recipes_{way}_bytes"] = str(refusal["bytes"])
    return found


def main() -> None:
    results = {
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "announce": announce(),
        "refusals": refusals(),
        "tickets": tickets(),
        "history": history(),
    }
    results["figures"] = figures(results)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
