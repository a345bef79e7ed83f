"""`make measure`: what each of the resilient room's bounds costs, measured.

Starts `python snippets/chatroom.py` as the page tells the reader to, loads it
as the limits tests do, and writes the figures to docs/resilient.json, which
conf.py renders on the page. Memory is the server's own, from /proc.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "snippets"))

import chatroom  # noqa: E402
from support import Server, commands, read_frame, send_frame  # noqa: E402
from test_chatroom_limits import (  # noqa: E402
    STALLED,
    TEXT,
    flood_stalled,
    knock,
    largest,
    say,
    status,
)

RESULTS = ROOT / "docs" / "resilient.json"
MB = 1024 * 1024


def cpu_seconds(server: Server) -> float:
    """User and system CPU time the server process has used so far."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().split(")")[1]
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def start() -> Server:
    return Server(commands("chatroom.console")[0], {})


def refusals(server: Server, path: str) -> float:
    """Milliseconds a refused handshake takes, the median of 100."""
    times = []
    for _ in range(100):
        started = time.monotonic()
        sock, line = knock(server, path, "127.0.2.1")
        times.append(time.monotonic() - started)
        sock.close()
        assert line == "HTTP/1.1 403 Forbidden", line
    return round(statistics.median(times) * 1000, 2)


def idle_connections() -> dict:
    """Server memory per open, silent connection, with MAX_CONNECTIONS open."""
    server = start()
    try:
        before = status(server, "VmRSS")
        with ExitStack() as stack:
            started = time.monotonic()
            for n in range(chatroom.MAX_CONNECTIONS):
                address = f"127.0.1.{n // chatroom.MAX_PER_ADDRESS + 1}"
                sock, _ = knock(server, "/chat/main", address)
                stack.callback(sock.close)
            opened = time.monotonic() - started
            after = status(server, "VmRSS")
            over_the_cap = refusals(server, "/chat/main")
        bad_name = refusals(server, "/chat/Not-A-Room")
    finally:
        server.stop()
    return {
        "connections": chatroom.MAX_CONNECTIONS,
        "bytes_per_connection": (after - before) // chatroom.MAX_CONNECTIONS,
        "seconds_to_open": round(opened, 2),
        "ms_per_refusal": over_the_cap,
        "ms_per_bad_name": bad_name,
    }


def stalled_members() -> dict:
    """Peak server memory while stalled members are flooded with emoji."""
    server = start()
    try:
        before, peak, speaking = flood_stalled(server)
    finally:
        server.stop()
    return {
        "stalled": STALLED,
        "speakers": speaking,
        "sent_bytes": speaking * chatroom.BURST * len(largest("0.0").encode()),
        "peak_growth_bytes": peak - before,
    }


FLOOD = 20_000  # Messages; enough for CPU time measured in clock ticks.


def flood() -> dict:
    """One client sends FLOOD messages at once: what is relayed, and the CPU."""
    server = start()
    try:
        sock, _ = knock(server, "/chat/main")
        cpu = cpu_seconds(server)
        for n in range(FLOOD):
            send_frame(sock, TEXT, say(f"flood {n}").encode())
        replies = [json.loads(read_frame(sock)[1]) for _ in range(FLOOD)]
        cpu = cpu_seconds(server) - cpu
        sock.close()
    finally:
        server.stop()
    relayed = sum(reply["type"] == "message" for reply in replies)
    return {
        "sent": FLOOD,
        "relayed": relayed,
        "dropped": FLOOD - relayed,
        "cpu_us_per_message": round(cpu / FLOOD * 1e6, 1),
    }


def oversized_frames() -> dict:
    """Eight clients announce 16 MiB frames at once: uvicorn's refusal."""
    server = start()
    try:
        before = status(server, "VmRSS")
        socks = [knock(server, "/chat/main")[0] for _ in range(8)]
        for sock in socks:
            header = bytes([0x81, 0xFF]) + (16 * MB).to_bytes(8, "big") + bytes(4)
            sock.sendall(header + bytes(64 * 1024))  # 64 KiB of the 16 MiB.
        codes = []
        for sock in socks:
            while (frame := read_frame(sock))[0] != 0x8:
                pass
            codes.append(int.from_bytes(frame[1][:2], "big"))
            sock.close()
        peak = status(server, "VmHWM")
    finally:
        server.stop()
    assert codes == [1009] * 8, codes
    return {"clients": 8, "frame_bytes": 16 * MB, "peak_growth_bytes": peak - before}


def size(n: int) -> str:
    return f"{n / MB:.1f} MiB" if n >= MB else f"{n / 1024:.0f} KiB"


def figures(r: dict) -> dict[str, str]:
    """The figures conf.py renders as |resilient_...| on the page."""
    return {
        f"resilient_{key}": value
        for key, value in {
            "measured_on": f"{r['machine']}, on {r['date']}",
            "per_connection": size(r["idle"]["bytes_per_connection"]),
            "all_connections": size(
                r["idle"]["bytes_per_connection"] * r["idle"]["connections"]
            ),
            "refusal": f"{r['idle']['ms_per_refusal']} ms",
            "bad_name": f"{r['idle']['ms_per_bad_name']} ms",
            "stalled_sent": size(r["stalled"]["sent_bytes"]),
            "stalled_growth": size(r["stalled"]["peak_growth_bytes"]),
            "flood_sent": f"{r['flood']['sent']:,}",
            "flood_relayed": f"{r['flood']['relayed']:,}",
            "flood_cpu": f"{r['flood']['cpu_us_per_message']} µs",
            "oversized_growth": size(r["oversized"]["peak_growth_bytes"]),
        }.items()
    }


def main() -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    results = {
        "machine": f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, "
        + ", ".join(
            f"{name} {metadata.version(name)}"
            for name in ("responder", "uvicorn", "websockets")
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "idle": idle_connections(),
        "stalled": stalled_members(),
        "flood": flood(),
        "oversized": oversized_frames(),
    }
    results["figures"] = figures(results)  # As the page shows them.
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
