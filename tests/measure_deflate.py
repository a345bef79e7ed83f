"""What permessage-deflate costs the server: memory per connection, CPU per message.

Starts the command of snippets/knobs.console (the echo server, on
websockets-sansio) with compression on, then off; opens CONNECTIONS clients
that each exchange one message, and sends MESSAGES chat-sized messages on one
of them; each figure is the median of RUNS such runs. Memory and CPU are the
server process's own, from /proc. Writes docs/deflate.json, which conf.py
renders on the server-knobs page. Run `python tests/measure_deflate.py` on a
quiet machine.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import Server, commands, free_port  # noqa: E402

RESULTS = ROOT / "docs" / "deflate.json"
CONNECTIONS = 200
MESSAGES = 20_000
RUNS = 3  # Each figure is the median of this many runs.
# A typical chat event: short JSON text, as the room sends it.
TEXT = json.dumps({"type": "message", "text": "Hello everyone, how is it going?"})


def start(deflate: str) -> Server:
    port = free_port()
    words = shlex.split(commands("knobs.console")[0].replace("5042", str(port)))
    words[words.index("--ws-per-message-deflate") + 1] = deflate
    return Server(shlex.join(words), {}, port)


def rss(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


def cpu_seconds(server: Server) -> float:
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().split(")")[1]
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def measure(deflate: str) -> dict[str, float]:
    server = start(deflate)
    try:
        url = f"{server.ws_url}/ws"
        with connect(url) as warm:  # Imports and first allocations, not counted.
            warm.send(TEXT)
            warm.recv()
        before = rss(server)
        with ExitStack() as stack:
            clients = [stack.enter_context(connect(url)) for _ in range(CONNECTIONS)]
            for client in clients:
                client.send(TEXT)
                client.recv()
            after = rss(server)
            negotiated = clients[0].protocol.extensions != []
            started = cpu_seconds(server)
            for _ in range(MESSAGES):
                clients[0].send(TEXT)
                clients[0].recv()
            cpu = cpu_seconds(server) - started
    finally:
        server.stop()
    assert negotiated == (deflate == "true")
    return {
        "bytes_per_connection": round((after - before) / CONNECTIONS),
        "cpu_us_per_message": round(cpu / MESSAGES * 1e6, 1),
    }


def median_of_runs(deflate: str) -> dict[str, float]:
    runs = [measure(deflate) for _ in range(RUNS)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def kib(value: float) -> str:
    return f"{value / 1024:.0f} KiB"


def main() -> None:
    on, off = median_of_runs("true"), median_of_runs("false")
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("responder", "uvicorn", "websockets")
    )
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Linux {platform.release()}, Python {platform.python_version()}, {versions}"
    )
    date = datetime.now(UTC).date().isoformat()
    results = {
        "machine": machine,
        "date": date,
        "connections": CONNECTIONS,
        "messages": MESSAGES,
        "runs": RUNS,
        "message_bytes": len(TEXT),
        "on": on,
        "off": off,
        "figures": {
            "deflate_measured_on": f"{machine}, on {date}",
            "deflate_connections": str(CONNECTIONS),
            "deflate_messages": str(MESSAGES),
            "deflate_message_bytes": f"{len(TEXT)} bytes",
            "deflate_on_memory": kib(on["bytes_per_connection"]),
            "deflate_off_memory": kib(off["bytes_per_connection"]),
            "deflate_on_cpu": f"{on['cpu_us_per_message']} µs",
            "deflate_off_cpu": f"{off['cpu_us_per_message']} µs",
        },
    }
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(results["figures"], indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
