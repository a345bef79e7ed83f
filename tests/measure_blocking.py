"""What a blocked event loop costs the other members, measured.

Starts `python snippets/blocking.py` as its page tells the reader to, with a
one-second query. One member of the room asks the server for replies, one at a
time, and times each round trip: with nothing else going on, while a report
runs its query on the event loop, and while one runs it in a thread. Writes
docs/blocking.json, which conf.py renders on the "Never block the event loop"
page. Run it with `.venv/bin/python tests/measure_blocking.py`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "snippets"))

from support import TIMEOUT, Server, commands  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

RESULTS = ROOT / "docs" / "blocking.json"
QUERY_SECONDS = 1  # Long enough to see, short enough to wait for.


def round_trip(member: ClientConnection) -> float:
    """Seconds from a ping to the server's reply (a pong, or "too fast")."""
    started = time.monotonic()
    member.send('{"type": "ping"}')
    member.recv(timeout=TIMEOUT)
    return time.monotonic() - started


def during(server: Server, member: ClientConnection, kind: str) -> list[float]:
    """Round trips for as long as a report of that kind is running."""
    url = f"{server.http_url}/report/{kind}"
    thread = threading.Thread(
        target=lambda: urllib.request.urlopen(url, timeout=TIMEOUT).close()
    )
    thread.start()
    server.wait_for("query started")
    times = []
    while thread.is_alive():
        times.append(round_trip(member))
    thread.join()
    return times


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, "
        + ", ".join(
            f"{name} {metadata.version(name)}"
            for name in ("responder", "uvicorn", "websockets")
        )
    )


def figures(r: dict) -> dict[str, str]:
    """The figures conf.py renders as |blocking_...| on the page."""
    return {
        "blocking_measured_on": f"{r['machine']}, on {r['date']}",
        "blocking_query": f"{r['query_seconds']} s",
        "blocking_idle": f"{r['idle_ms_median']} ms",
        "blocking_worst": f"{r['blocking_ms_worst']} ms",
        "blocking_threaded_worst": f"{r['threaded_ms_worst']} ms",
    }


def main() -> None:
    server = Server(
        commands("blocking.console")[0], {"CHAT_QUERY_SECONDS": str(QUERY_SECONDS)}
    )
    try:
        with connect(f"{server.ws_url}/chat/main", ping_interval=None) as member:
            idle = [round_trip(member) for _ in range(50)]
            blocked = during(server, member, "blocking")
            threaded = during(server, member, "threaded")
    finally:
        server.stop()
    results = {
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "query_seconds": QUERY_SECONDS,
        "idle_ms_median": ms(statistics.median(idle)),
        "blocking_ms_worst": ms(max(blocked)),
        "threaded_ms_worst": ms(max(threaded)),
        "threaded_round_trips": len(threaded),
    }
    results["figures"] = figures(results)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
