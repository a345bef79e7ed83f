"""Measure the Redis room: `make bench-redis` writes docs/redis-bench.json.

The scale-out page renders its figures from that file. Everything runs on this
machine: one private Redis, app processes started as the page shows them.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "snippets")]

import chatroom_redis  # noqa: E402
from redis_server import RedisServer, redis_binary  # noqa: E402
from support import ROOT, Server  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

RESULTS = ROOT / "docs" / "redis-bench.json"
ROUNDS = 500  # Messages timed one at a time, for the latencies.
RESTARTS = 5  # Redis restarts timed, for the recovery figures.
RATE = 100  # Messages a second while Redis restarts.


class Ear:
    """Reads one connection on a thread; records when each event arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[tuple[float, dict]] = []
        self.changed = threading.Condition()
        threading.Thread(target=self.listen, daemon=True).start()

    def listen(self) -> None:
        try:
            for text in self.ws:
                with self.changed:
                    self.events.append((time.perf_counter(), json.loads(text)))
                    self.changed.notify_all()
        except Exception:  # Closed: the run is over.
            return

    def wait(self, wanted: dict, start: int = 0) -> float:
        """When the first event equal to wanted, from index start on, arrived."""

        def found() -> float | None:
            return next(
                (at for at, event in self.events[start:] if event == wanted), None
            )

        with self.changed:
            at = self.changed.wait_for(found, 30)
        assert at is not None, f"never heard {wanted}"
        return at

    def count(self, kind: str) -> int:
        with self.changed:
            return sum(event["type"] == kind for _, event in self.events)


def machine(binary: str) -> dict[str, object]:
    """What measured: the machine, Python, the Redis server and the clients."""
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.machine()}",
        "server": f"{version[0]} {version[2].removeprefix('v=')}",
        "redis_py": metadata.version("redis"),
        "uvicorn": metadata.version("uvicorn"),
    }


# One client here speaks for many people: lift chatroom.py's per-person rate.
LIFTED = {"CHAT_RATE": "100000"}


def start_app(command: str, redis: RedisServer) -> Server:
    server = Server(command, {"REDIS_URL": redis.url, **LIFTED})
    server.wait_for("subscribed to heartbeat:")
    return server


def member(stack: ExitStack, server: Server) -> tuple[ClientConnection, Ear]:
    ws = stack.enter_context(connect(f"{server.ws_url}/chat/main", max_size=None))
    ws.send(json.dumps({"type": "ping"}))
    ear = Ear(ws)
    ear.wait({"type": "pong"})
    return ws, ear


def message(text: str) -> dict:
    return {"type": "message", "text": text}


def percentiles(seconds: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(seconds, n=100)
    return {"p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


def latencies(speaker: ClientConnection, ears: list[Ear]) -> list[list[float]]:
    """Send ROUNDS messages one at a time; each ear's delay for each."""
    delays: list[list[float]] = [[] for _ in ears]
    for n in range(ROUNDS):
        marks = [len(ear.events) for ear in ears]
        sent = time.perf_counter()
        speaker.send(json.dumps({"text": f"timed {n}"}))
        for ear, mark, into in zip(ears, marks, delays, strict=True):
            into.append(ear.wait(message(f"timed {n}"), mark) - sent)
    return delays


def main() -> None:
    binary = redis_binary()
    assert binary, "no Redis server binary"
    command = "python snippets/chatroom_redis.py"
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        redis = RedisServer(binary, Path(tmp))
        stack.callback(redis.stop)
        first, second = start_app(command, redis), start_app(command, redis)
        basic = Server("python snippets/chatroom.py", LIFTED)
        for server in (first, second, basic):
            stack.callback(server.stop)

        # Latency: in one process's memory; through Redis to the same and to
        # another process.
        ann, ann_ear = member(stack, basic)
        (memory,) = latencies(ann, [member(stack, basic)[1]])
        ann, ann_ear = member(stack, first)
        _, same = member(stack, first)
        _, other = member(stack, second)
        same_delays, other_delays = latencies(ann, [same, other])
        results["latency"] = {
            "in_memory": percentiles(memory),
            "same_process": percentiles(same_delays),
            "cross_process": percentiles(other_delays),
            "rounds": ROUNDS,
        }

        # Recovery: from a restarted Redis accepting connections until members
        # hear the notice, and until a message crosses processes again.
        notice = {"type": "notice", "text": chatroom_redis.MISSED}
        told, flowing = [], []
        for n in range(RESTARTS):
            mark = len(other.events)
            redis.stop()
            redis.start()
            back = time.perf_counter()
            told.append(other.wait(notice, mark) - back)
            ann_ear.wait(notice, mark)
            ann.send(json.dumps({"text": f"after restart {n}"}))
            flowing.append(other.wait(message(f"after restart {n}"), mark) - back)
        results["restart"] = {
            "told_s": max(told),
            "flowing_s": max(flowing),
            "restarts": RESTARTS,
        }

        # Loss: Ann speaks RATE times a second for 3 seconds; Redis restarts
        # after the first second.
        mark = len(other.events)
        errors = ann_ear.count("error")
        sent = [f"steady {n}" for n in range(3 * RATE)]
        begin = time.perf_counter()
        for n, text in enumerate(sent):
            if n == RATE:
                redis.restart()
            time.sleep(max(0.0, begin + n / RATE - time.perf_counter()))
            ann.send(json.dumps({"text": text}))
        ann.send(json.dumps({"text": "steady end"}))
        other.wait(message("steady end"), mark)
        heard = {e["text"] for _, e in other.events[mark:] if e["type"] == "message"}
        results["loss"] = {
            "rate_per_s": RATE,
            "sent": len(sent),
            "lost": sum(text not in heard for text in sent),
            "not_confirmed": ann_ear.count("error") - errors,
        }

        # The stall: how long a sender waits for "not confirmed", with Redis
        # stopped and with Redis frozen.
        error = {"type": "error", "error": chatroom_redis.NOT_CONFIRMED}
        stall = {}
        for state in ("stopped", "frozen"):
            if state == "stopped":
                redis.stop()
            else:
                redis.freeze()
            mark = len(ann_ear.events)
            sent_at = time.perf_counter()
            ann.send(json.dumps({"text": f"while {state}"}))
            stall[f"{state}_s"] = ann_ear.wait(error, mark) - sent_at
            if state == "stopped":
                redis.start()
                ann_ear.wait(notice, mark)  # Subscribed again.
            else:
                redis.thaw()
            ann.send(json.dumps({"text": f"after {state}"}))
            ann_ear.wait(message(f"after {state}"), mark)
        results["stall"] = stall

    results["machine"] = machine(binary)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
