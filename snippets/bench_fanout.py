"""How fast is the room? Fan-out measured from outside, on this machine.

Each measurement starts one room as a server process, connects N members
(spread over several client processes), and has one of them, the speaker,
send M messages at a fixed rate. It records how long each message took to
reach every member, the server's CPU time per 1,000 deliveries (read from
/proc/<pid>/stat), its peak memory, and how many messages arrived: fewer than
N x M is a failure. Every wait has a timeout; every process is stopped by PID.

    python snippets/bench_fanout.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import os
import platform
import signal
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

HERE = Path(__file__).resolve().parent
TIMEOUT = 60  # Seconds any one step may take before the run fails.
PER_PROCESS = 250  # Members per client process, so that the clients keep up.
STALL_SIZE = 8 * 1024  # Bytes per message when one member never reads: under
# chatroom.py's MAX_MESSAGE, and enough of them to fill the kernel's buffers.
PACKAGES = ["responder", "starlette", "uvicorn", "websockets", "uvloop", "httptools"]


@dataclass
class Room:
    """A room to measure: the command that serves it, and what it prints when ready."""

    name: str
    about: str
    command: list[str]
    ready: str = "Uvicorn running on"
    path: str = "/chat/bench"


def variant(about: str, *options: str) -> Room:
    """The resilient room served with other settings (see serve() below)."""
    name = "chatroom" + "".join(f" {o.removeprefix('--')}" for o in options)
    return Room(name, about, [__file__, "serve", "chatroom", *options])


ROOMS = [
    Room(
        "reference",
        "websockets broadcast(), asyncio loop",
        [str(HERE / "reference_room.py")],
        ready="Serving on",
    ),
    Room(
        "reference uvloop",
        "websockets broadcast(), uvloop (as uvicorn uses it)",
        [str(HERE / "reference_room.py"), "--uvloop"],
        ready="Serving on",
    ),
    Room("chat", "the basic room, chat.py", [str(HERE / "chat.py")], path="/chat"),
    Room(
        "chatroom", "the resilient room, chatroom.py", [__file__, "serve", "chatroom"]
    ),
    Room(
        "chatroom_eager",
        "the resilient room, sending at once: chatroom_eager.py",
        [__file__, "serve", "chatroom_eager"],
    ),
]
CANDIDATES = [
    variant("chatroom.py, uvicorn --ws websockets", "--ws=websockets"),
    variant("chatroom.py, uvicorn --ws wsproto", "--ws=wsproto"),
    variant("chatroom.py, asyncio loop and h11", "--loop=asyncio", "--http=h11"),
    variant("chatroom.py, senders woken by an asyncio.Event", "--undo=event"),
    variant("chatroom.py, each member's copy encoded anew", "--undo=encode-each"),
]


def serve(module: str, ws: str, loop: str, http: str, undo: str | None) -> None:
    """Run a room module's app under uvicorn with the given implementations."""
    import uvicorn

    room = importlib.import_module(module)
    chatroom = importlib.import_module("chatroom")  # Its rooms' limits live here.
    if undo:  # One of the room's savings put back (see bench_undo.py).
        importlib.import_module("bench_undo").UNDO[undo]()
    # One machine speaks for a thousand people here, so the limits meant for
    # one person (its rate, its connections) are lifted; every other bound,
    # the outbox's among them, stays as the room sets it.
    for limit in ("RATE", "BURST", "MAX_PER_ADDRESS", "MAX_CONNECTIONS"):
        setattr(chatroom, limit, 10**9)
    port = int(os.environ["PORT"])
    config = uvicorn.Config(
        room.api, port=port, ws=ws, loop=loop, http=http, ws_max_size=chatroom.MAX_FRAME
    )
    with contextlib.suppress(KeyboardInterrupt):
        chatroom.Server(config).run()


# -- The client processes ---------------------------------------------------


def message(seq: int, size: int) -> str:
    """What the speaker says: a sequence number, the time sent, then padding."""
    head = f"{seq} {time.monotonic():.6f} "
    return json.dumps({"text": head + "x" * max(0, size - len(head))})


@dataclass
class Heard:
    """What one process's members received: a count, and each message's worst delay."""

    delivered: int = 0
    worst: dict[int, float] = field(default_factory=dict)


async def listen(ws: ClientConnection, expected: int, heard: Heard) -> None:
    """Receive expected messages, noting when each arrived."""
    with contextlib.suppress(ConnectionClosed):  # Then the rest is missing.
        for _ in range(expected):
            seq, sent, _ = json.loads(await ws.recv())["text"].split(" ", 2)
            # CLOCK_MONOTONIC is one clock for every process on the machine.
            delay = time.monotonic() - float(sent)
            heard.worst[int(seq)] = max(heard.worst.get(int(seq), 0.0), delay)
            heard.delivered += 1


async def members(url: str, count: int, expected: int, wait: float) -> None:
    """One client process: connect count members, report once all have heard."""
    heard = Heard()
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for start in range(0, count, 50):  # In batches: the listen backlog is finite.
            sockets += await asyncio.gather(
                *(
                    stack.enter_async_context(
                        connect(url, max_size=None, compression=None, open_timeout=60)
                    )
                    for _ in range(min(50, count - start))
                )
            )
        print("ready", flush=True)
        tasks = [asyncio.create_task(listen(ws, expected, heard)) for ws in sockets]
        await asyncio.wait(tasks, timeout=wait)
        for task in tasks:  # Members still waiting: what they missed stays missing.
            task.cancel()
        report = {"delivered": heard.delivered, "worst": sorted(heard.worst.items())}
        print(json.dumps({**report, "cpu": time.process_time()}), flush=True)


# -- One measurement --------------------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float]:
    """A process's CPU time so far, from /proc/<pid>/stat: in its own code
    (user) and in the kernel on its behalf (system), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def peak_rss_mb(pid: int) -> float:
    """The most memory the process has held (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmHWM for {pid}")  # pragma: no cover - Linux has it.


async def stop(process: asyncio.subprocess.Process, by_itself: bool = False) -> None:
    """Ctrl+C, as a reader stops a server; kill if it does not stop in time."""
    if by_itself:  # A client process that has reported exits on its own.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), TIMEOUT)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), TIMEOUT)
        except TimeoutError:  # pragma: no cover - only a hung server gets here.
            process.kill()
            await process.wait()


@dataclass
class Server:
    process: asyncio.subprocess.Process
    port: int
    output: list[str] = field(default_factory=list)
    reader: asyncio.Task | None = None


async def start_server(room: Room) -> Server:
    with socket.socket() as sock:  # A free port, as the tests pick one.
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *room.command,
        env={**os.environ, "PORT": str(port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(process, port)
    ready = asyncio.Event()

    async def read() -> None:  # Keep reading, so its log never fills the pipe.
        assert process.stdout is not None
        async for line in process.stdout:
            server.output.append(line.decode())
            if room.ready in server.output[-1]:
                ready.set()
        ready.set()  # It exited: stop waiting.

    server.reader = asyncio.create_task(read())
    try:
        await asyncio.wait_for(ready.wait(), TIMEOUT)
        if room.ready not in "".join(server.output):
            raise RuntimeError(f"{room.name} did not start:\n" + "".join(server.output))
    except BaseException:
        await stop(process)
        await asyncio.wait_for(server.reader, TIMEOUT)
        raise
    return server


def stalled_member(port: int, path: str) -> socket.socket:
    """A member that completes the handshake and then never reads."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += sock.recv(1)  # One byte at a time: leave the frames unread.
    return sock


def what_it_got(sock: socket.socket, messages: int) -> dict:
    """Read what was kept for the stalled member: messages, or a close frame."""
    reader = sock.makefile("rb")
    received = 0
    with contextlib.suppress(TimeoutError, ConnectionError, ValueError):
        while received < messages:
            first, second = reader.read(2)
            length = second & 0x7F
            if length >= 126:
                length = int.from_bytes(reader.read(2 if length == 126 else 8), "big")
            payload = reader.read(length)
            if first & 0x0F == 0x8:  # A close frame: the room cut it off.
                return {"received": received, "close_code": int.from_bytes(payload[:2])}
            received += first & 0x0F == 0x1  # Text; a ping is not a message.
    return {"received": received, "close_code": None}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


async def measure(
    room: Room, n: int, messages: int, rate: float, size: int, stall: bool = False
) -> dict:
    """One run: room serves n members (one of them speaks); what did it cost?"""
    began = time.monotonic()
    server = await start_server(room)
    url = f"ws://127.0.0.1:{server.port}{room.path}"
    wait = messages / rate + TIMEOUT
    listeners = n - 1  # The speaker is a member too, and hears itself.
    processes = math.ceil(listeners / PER_PROCESS)
    counts = [len(range(i, listeners, processes)) for i in range(processes)]
    clients: list[asyncio.subprocess.Process] = []
    stalled = None
    try:
        for count in counts:
            clients.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "members",
                    url,
                    str(count),
                    str(messages),
                    str(wait),
                    stdout=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
            )
        for client in clients:
            assert client.stdout is not None
            line = await asyncio.wait_for(client.stdout.readline(), TIMEOUT)
            if line != b"ready\n":
                raise RuntimeError(f"a client process failed to connect: {line!r}")
        if stall:
            stalled = await asyncio.to_thread(stalled_member, server.port, room.path)
        async with connect(url, max_size=None, compression=None) as speaker:
            heard = Heard()
            hearing = asyncio.create_task(listen(speaker, messages, heard))
            before = cpu_seconds(server.process.pid)
            start = time.monotonic()
            with contextlib.suppress(ConnectionClosed):  # A stuck room stops it.
                for seq in range(messages):  # At a fixed rate, not as fast as it can.
                    await asyncio.sleep(max(0.0, start + seq / rate - time.monotonic()))
                    await speaker.send(message(seq, size))
            results = []
            for client in clients:
                assert client.stdout is not None
                line = await asyncio.wait_for(client.stdout.readline(), wait)
                results.append(json.loads(line))
            with contextlib.suppress(TimeoutError):  # What it missed is missing.
                await asyncio.wait_for(hearing, TIMEOUT)
            after = cpu_seconds(server.process.pid)
            user, kernel = (a - b for a, b in zip(after, before, strict=True))
        delivered = heard.delivered + sum(r["delivered"] for r in results)
        worst = heard.worst
        for result in results:
            for seq, delay in result["worst"]:
                worst[seq] = max(worst.get(seq, 0.0), delay)
        latencies = [worst[seq] * 1000 for seq in sorted(worst)] or [math.nan]
        per = max(delivered, 1)
        run = {
            "room": room.name,
            "members": n,
            "messages": messages,
            "rate": rate,
            "size": size,
            "delivered": delivered,
            "expected": n * messages,
            "ok": delivered == n * messages,
            "latency_ms": {
                "p50": round(statistics.median(latencies), 2),
                "p99": round(percentile(latencies, 0.99), 2),
                "max": round(max(latencies), 2),
            },
            "server_cpu_s": round(user + kernel, 3),
            "server_cpu_ms_per_1000": round(1e6 * (user + kernel) / per, 2),
            "server_kernel_ms_per_1000": round(1e6 * kernel / per, 2),
            "server_peak_rss_mb": round(peak_rss_mb(server.process.pid), 1),
            "client_processes": len(clients),
            "client_cpu_s": round(sum(r["cpu"] for r in results), 2),
            "seconds": round(time.monotonic() - began, 1),
        }
        if stalled is not None:
            got = await asyncio.to_thread(what_it_got, stalled, messages)
            run["stalled_member"] = got
        return run
    finally:
        for client in clients:
            await stop(client, by_itself=True)
        if stalled is not None:
            stalled.close()
        await stop(server.process)
        await asyncio.wait_for(server.reader, TIMEOUT)


# -- The whole benchmark ----------------------------------------------------


def machine() -> dict:
    """What produced the figures: cores, CPU, Python and package versions."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "cores": os.cpu_count(),
        "clock_ticks": os.sysconf("SC_CLK_TCK"),  # CPU time's unit in /proc.
        "cpu": cpu,
        "python": platform.python_version(),
        "packages": versions,
    }


async def benchmark(options: argparse.Namespace) -> dict:
    chosen = [room for room in ROOMS + CANDIDATES if room.name in options.rooms]
    results: dict = {"machine": machine(), "fanout": [], "stalled": []}
    results["candidates"] = [room.name for room in CANDIDATES]
    results["settings"] = {
        "messages": options.messages,
        "size": options.size,
        "rate": options.rate,
        "deliveries_per_second": options.deliveries,
        "members_per_client_process": PER_PROCESS,
        "rounds": options.rounds,
        "stall": {
            "members": options.stall_members,
            "messages": options.stall_messages,
            "size": STALL_SIZE,
            "rate": options.stall_rate,
        },
    }
    rooms = [room for room in chosen if room in ROOMS]
    candidates = [room for room in chosen if room not in ROOMS]
    plan = []
    for n in options.sizes:
        # At the largest N, the rooms again and again, in turn, one way then
        # the other: the machine's drift over a run shows in every room alike.
        repeats = options.rounds if n == max(options.sizes) else 1
        for turn in range(repeats):
            plan += [(n, room) for room in (rooms if turn % 2 == 0 else rooms[::-1])]
            if turn == 0 and n in options.candidates_at:  # Only where asked:
                plan += [(n, room) for room in candidates]  # each costs a room.
    for n, room in plan:
        rate = min(options.rate, options.deliveries / n)
        run = await measure(room, n, options.messages, rate, options.size)
        print(json.dumps(run), file=sys.stderr, flush=True)
        results["fanout"].append(run)
    for room in chosen:
        if room.name in options.stall_rooms:
            run = await measure(
                room,
                options.stall_members,
                options.stall_messages,
                options.stall_rate,
                STALL_SIZE,
                stall=True,
            )
            print(json.dumps(run), file=sys.stderr, flush=True)
            results["stalled"].append(run)
    return results


def numbers(text: str) -> list[int]:
    return [int(word) for word in text.split(",") if word]


def names(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["members"]:  # A client process, started by measure().
        url, count, expected, wait = args[1:]
        asyncio.run(members(url, int(count), int(expected), float(wait)))
        return 0
    if args[:1] == ["serve"]:  # A room under other settings, started by measure().
        parser = argparse.ArgumentParser(prog="bench_fanout.py serve")
        parser.add_argument("module")
        parser.add_argument("--ws", default="auto")
        parser.add_argument("--loop", default="auto")
        parser.add_argument("--http", default="auto")
        parser.add_argument("--undo")
        options = parser.parse_args(args[1:])
        serve(options.module, options.ws, options.loop, options.http, options.undo)
        return 0
    every = [room.name for room in ROOMS + CANDIDATES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=numbers, default=[10, 100, 1000])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=100, help="bytes per message")
    parser.add_argument("--rate", type=float, default=50, help="messages a second")
    parser.add_argument(
        "--deliveries",
        type=float,
        default=10_000,
        help="at most this many deliveries a second: lowers the rate for large N",
    )
    parser.add_argument("--rooms", type=names, default=every, help=", ".join(every))
    parser.add_argument("--candidates-at", type=numbers, default=[1000])
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements of each room at top N"
    )
    parser.add_argument(
        "--stall-rooms",
        type=names,
        default=["reference uvloop", "chatroom", "chatroom_eager"],
    )
    parser.add_argument("--stall-members", type=int, default=10)
    parser.add_argument("--stall-messages", type=int, default=1200)
    parser.add_argument("--stall-rate", type=float, default=100)
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    options = parser.parse_args(args)
    # Started in the background, a shell makes us ignore Ctrl+C, and so would our
    # servers: give them back the default, so that stop() can stop them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results = asyncio.run(benchmark(options))
    text = json.dumps(results, indent=1) + "\n"
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(text)
    else:
        print(text, end="")
    failed = [r for r in results["fanout"] + results["stalled"] if not r["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))  # So `serve chatroom` finds the snippets.
    raise SystemExit(main())
