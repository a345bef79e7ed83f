"""Measure the resumable room: `make bench-resume` writes docs/resume-bench.json.

The resume page renders its figures from that file. Everything runs on this
machine: one private Redis, two app processes of each program, started as the
pages show them, with the per-person rate lifted (CHAT_RATE) as the tests do.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "snippets")]

from bench_redis import ROUNDS, machine, percentiles  # noqa: E402
from redis import Redis  # noqa: E402
from redis_server import RedisServer, redis_binary  # noqa: E402
from support import ROOT, Server  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

RESULTS = ROOT / "docs" / "resume-bench.json"
MISSED = 1000  # Messages a resuming client has missed.
REPLAYS = 5  # Replays timed; the median is shown.
TEXT = "a message of fifty characters, give or take, {:05}"  # Its size, in history.


def pair(stack: ExitStack, program: str, redis: RedisServer) -> list[Server]:
    servers = []
    for _ in range(2):
        server = Server(
            f"python snippets/{program}", {"REDIS_URL": redis.url, "CHAT_RATE": "1e6"}
        )
        stack.callback(server.stop)
        server.wait_for("subscribed to heartbeat:")
        servers.append(server)
    return servers


def latency(program: str, redis: RedisServer) -> dict[str, float]:
    """Cross-process latency of one room: speaker on one process, ear on the other."""
    with ExitStack() as stack:
        first, second = pair(stack, program, redis)
        speaker = stack.enter_context(connect(f"{first.ws_url}/chat/main"))
        listener = stack.enter_context(connect(f"{second.ws_url}/chat/main"))
        second.wait_for("subscribed to chat:main")
        delays = []
        for n in range(ROUNDS):  # One at a time: each the only one in flight.
            sent = time.perf_counter()
            speaker.send(json.dumps({"text": f"timed {n}"}))
            while json.loads(listener.recv()).get("text") != f"timed {n}":
                pass  # History shown on join, or a pong.
            delays.append(time.perf_counter() - sent)
        return percentiles(delays)


def replays(redis: RedisServer) -> tuple[list[float], int]:
    """Seconds to receive MISSED messages after since=; memory of the stream."""
    timings = []
    with ExitStack() as stack:
        first, second = pair(stack, "chatroom_resume.py", redis)
        ann = stack.enter_context(connect(f"{first.ws_url}/chat/main"))
        ann.send(json.dumps({"text": "before"}))
        event: dict = {}
        while event.get("text") != "before":  # After the history shown on join.
            event = json.loads(ann.recv())
        since = event["id"]
        for n in range(MISSED):
            ann.send(json.dumps({"text": TEXT.format(n)}))
        for _ in range(MISSED):
            ann.recv()
        for _ in range(REPLAYS):
            started = time.perf_counter()
            with connect(f"{second.ws_url}/chat/main?since={since}") as ben:
                for _ in range(MISSED):
                    assert json.loads(ben.recv())["type"] == "message"
                timings.append(time.perf_counter() - started)
    with Redis.from_url(redis.url) as client:
        client.delete("history:main")  # Measured alone: 1,000 messages, no more.
        with ExitStack() as stack:
            (server, _) = pair(stack, "chatroom_resume.py", redis)
            with connect(f"{server.ws_url}/chat/main") as ann:
                for n in range(MISSED):
                    ann.send(json.dumps({"text": TEXT.format(n)}))
                for _ in range(MISSED):
                    ann.recv()
        assert client.xlen("history:main") == MISSED
        memory = client.memory_usage("history:main", samples=0)
    return timings, memory


def main() -> None:
    binary = redis_binary()
    assert binary, "no Redis server binary"
    results: dict = {}
    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(binary, Path(directory))
        try:
            results["latency"] = {
                "pubsub": latency("chatroom_redis.py", redis),
                "resume": latency("chatroom_resume.py", redis),
            }
            timings, memory = replays(redis)
        finally:
            redis.stop()
    extra = {
        cut: results["latency"]["resume"][cut] - results["latency"]["pubsub"][cut]
        for cut in ("p50_ms", "p99_ms")
    }
    results["latency"] |= {"extra": extra, "rounds": ROUNDS}
    results["replay"] = {"missed": MISSED, "median_s": statistics.median(timings)}
    results["memory"] = {
        "messages": MISSED,
        "text_chars": len(TEXT.format(0)),
        "bytes": memory,
    }
    results["machine"] = machine(binary)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
