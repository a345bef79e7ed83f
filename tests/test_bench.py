"""The "How fast is it?" chapter: its reference room, its benchmark, its page."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import bench_fanout
import fanout_report
import pytest
import reference_room
import responder
import uvicorn
from starlette.middleware.sessions import SessionMiddleware
from support import ROOT, TIMEOUT, argv, commands, snippet, without_coverage
from uvicorn.loops.auto import auto_loop_factory
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import (
    WebSocketsSansIOProtocol,
)
from websockets.asyncio.client import connect as aconnect
from websockets.asyncio.server import serve as ws_serve
from websockets.sync.client import connect

PAGE = ROOT / "docs" / "source" / "how-fast-is-it.rst"


def said(text: str) -> str:
    return json.dumps({"text": text})


@pytest.mark.verifies("reference_room.console")  # Read at collection, by no test.
@pytest.mark.parametrize("command", commands("reference_room.console"))
def test_reference_room_speaks_the_chat_rooms_protocol(serve, command) -> None:
    server = serve(command, ready="Serving on")
    with (
        connect(f"{server.ws_url}/chat/a") as ann,
        connect(f"{server.ws_url}/chat/a") as bob,
        connect(f"{server.ws_url}/chat/b") as eve,
    ):
        ann.send(said("hi"))
        for member in (ann, bob):  # The sender hears itself too.
            heard = json.loads(member.recv(timeout=TIMEOUT))
            assert heard == {"type": "message", "text": "hi"}
        eve.send(said("anyone?"))  # Another room: its first message is its own.
        assert json.loads(eve.recv(timeout=TIMEOUT))["text"] == "anyone?"
        for bad in ("not json", '"text"', "[1, 2]", '{"txt": "hi"}'):
            bob.send(bad)
            error = json.loads(bob.recv(timeout=TIMEOUT))
            assert error == {"type": "error", "error": "expected JSON"}
        bob.close()  # Leaving keeps the room for those still in it.
        ann.send(said("still here"))
        assert json.loads(ann.recv(timeout=TIMEOUT))["text"] == "still here"


def test_reference_room_is_deleted_with_its_last_member() -> None:
    async def scenario() -> None:
        async with ws_serve(reference_room.chatroom, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with aconnect(f"ws://127.0.0.1:{port}/chat/a") as ann:
                await ann.send(said("hi"))
                await asyncio.wait_for(ann.recv(), TIMEOUT)
                assert set(reference_room.rooms) == {"a"}
            server.close()  # Returns once every handler has finished.
            await asyncio.wait_for(server.wait_closed(), TIMEOUT)
        assert reference_room.rooms == {}

    asyncio.run(scenario())


def test_uvicorn_picks_uvloop_and_responder_turns_sessions_on() -> None:
    loop = auto_loop_factory()()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
    assert uvicorn.Config(app=None).ws == "auto"  # And "auto" is websockets-sansio:
    assert AutoWebSocketsProtocol is WebSocketsSansIOProtocol

    def layers(api: responder.API) -> list[type]:
        found, app = [], api.app
        while app is not None:
            found.append(type(app))
            app = getattr(app, "app", None)
        return found

    assert SessionMiddleware in layers(responder.API())
    assert SessionMiddleware not in layers(responder.API(sessions=False))


def test_make_bench_writes_the_results_the_page_draws() -> None:
    recipe = re.search(r"^bench:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None
    assert recipe[1].split()[1:] == [
        "snippets/bench_fanout.py",
        "--out",
        "docs/bench/fanout.json",
    ]
    assert fanout_report.load(ROOT / "docs" / "bench" / "fanout.json")["fanout"]


def test_shown_small_run_delivers_every_message() -> None:
    result = subprocess.run(
        argv(commands("bench_fanout.console")[0]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    assert [(r["room"], r["members"]) for r in results["fanout"]] == [
        ("reference uvloop", 10),
        ("chatroom", 10),
    ]
    for run in results["fanout"]:
        assert run["delivered"] == run["expected"] == 10 * 50, run
        assert run["client_processes"] == 1 and run["server_peak_rss_mb"] > 10
        assert 0 < run["latency_ms"]["p50"] <= run["latency_ms"]["max"]
    assert results["stalled"] == []


# Each kind of room once (reference_room.py on asyncio is tested above), and a
# candidate served with another WebSocket implementation.
TINY = [
    "reference uvloop",
    "chat",
    "chatroom",
    "chatroom_eager",
    "chatroom ws=wsproto",
]


def test_tiny_benchmark_renders_the_page(tmp_path: Path) -> None:
    """Rooms at tiny N, the stall runs, then the page's figures from them."""
    out = tmp_path / "fanout.json"
    assert (
        bench_fanout.main(
            [
                "--sizes=2",
                "--messages=5",
                "--rate=200",
                "--candidates-at=2",
                "--rounds=2",
                f"--rooms={','.join(TINY)}",
                "--stall-members=2",
                "--stall-rate=1000",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads(out.read_text())
    rooms, candidates = TINY[:-1], TINY[-1:]  # In turn, then the other way round:
    assert [r["room"] for r in results["fanout"]] == rooms + candidates + rooms[::-1]
    assert all(r["delivered"] == r["expected"] for r in results["fanout"])
    kept, *cut = results["stalled"]  # The defaults: the reference, then the rooms.
    assert [r["room"] for r in cut] == ["chatroom", "chatroom_eager"]
    assert kept["room"] == "reference uvloop"
    assert kept["stalled_member"] == {"received": 1200, "close_code": None}
    for room in cut:
        assert room["stalled_member"]["close_code"] == 1008
        assert room["stalled_member"]["received"] < 1200
    assert {r["delivered"] for r in results["stalled"]} == {2 * 1200}

    html = build_page(tmp_path, out)
    assert "each room was measured 2 times, in turn" in html
    assert f"{results['machine']['cores']} cores" in html
    merged = fanout_report.merge(results)
    base = fanout_report.cost(merged, "reference uvloop", 2)
    assert f"reference uvloop used {base:.1f} ms of server CPU" in html
    assert fanout_report.gap_text(merged) in html
    assert fanout_report.noise_text(merged) in html
    for run in results["fanout"]:
        assert f"{run['server_cpu_ms_per_1000']:.1f}" in html
        assert 0 <= run["server_kernel_ms_per_1000"] <= run["server_cpu_ms_per_1000"]
    assert "with 1008" in html and "all 1200 messages kept" in html
    assert html.count("<svg") == 1 and "server CPU ms per 1,000 deliveries" in html


def build_page(tmp_path: Path, results: Path) -> str:
    """Build the chapter's figures (its bench directives only) from results."""
    source = tmp_path / "source"
    source.mkdir()
    directives = re.findall(r"^\.\. bench-.*$", PAGE.read_text(), re.M)
    assert len(directives) == 9, directives
    (source / "index.rst").write_text("Bench\n=====\n\n" + "\n\n".join(directives))
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'docs' / 'bench')!r})\n"
        f"extensions = ['fanout_report']\nbench_results = {str(results)!r}\n"
    )
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", source, tmp_path],
        capture_output=True,
        text=True,
        timeout=120,
        env=without_coverage(),  # Sphinx runs no snippet: measuring it costs seconds.
    )
    assert build.returncode == 0, build.stderr
    return (tmp_path / "index.html").read_text()


def test_a_room_that_does_not_start_fails_the_run_clearly() -> None:
    broken = bench_fanout.Room("broken", "exits", ["-c", "print('no')"])
    with pytest.raises(RuntimeError, match="broken did not start:\nno"):
        asyncio.run(bench_fanout.start_server(broken))


def test_a_room_that_refuses_members_fails_the_run_clearly() -> None:
    wrong = bench_fanout.Room(
        "wrong path", "", [snippet_path("chatroom.py")], path="/nowhere"
    )
    with pytest.raises(RuntimeError, match="a client process failed to connect"):
        asyncio.run(bench_fanout.measure(wrong, 2, 1, 10, 10))


def snippet_path(name: str) -> str:
    snippet(name)  # Records that this test used it.
    return str(ROOT / "snippets" / name)


@pytest.mark.parametrize(
    ("received", "code", "fate"),
    [
        (1200, None, "all 1200 messages kept for it"),
        (499, 1008, "cut off after 499 of 1200 messages, with 1008"),
        (499, None, "cut off after 499 of 1200 messages; no close frame got through"),
    ],
)
def test_the_stall_table_says_what_became_of_the_silent_member(
    received: int, code: int | None, fate: str
) -> None:
    run = {
        "messages": 1200,
        "stalled_member": {"received": received, "close_code": code},
    }
    assert fanout_report.stalled_fate(run) == fate


def test_an_asgi_app_sees_no_transport_to_ask_before_it_sends() -> None:
    """What uvicorn hands a WebSocket app: the scope's keys and extensions."""

    async def app(scope, receive, send) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        seen = {"keys": sorted(scope), "extensions": sorted(scope["extensions"])}
        await send({"type": "websocket.send", "text": json.dumps(seen)})
        await send({"type": "websocket.close"})

    async def scenario() -> dict:
        config = uvicorn.Config(app, lifespan="off", log_level="warning")
        server = uvicorn.Server(config)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()  # Connections wait in its backlog until uvicorn serves.
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                url = f"ws://127.0.0.1:{sock.getsockname()[1]}/"
                async with aconnect(url) as ws:
                    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            finally:
                server.should_exit = True
                await asyncio.wait_for(serving, TIMEOUT)

    seen = asyncio.run(scenario())
    assert seen["extensions"] == ["websocket.http.response"]
    assert "headers" in seen["keys"]  # What a handshake's scope does hold.
    assert not [key for key in seen["keys"] if "transport" in key or "buffer" in key]


def test_the_gap_is_told_from_the_top_n_only() -> None:
    def run(room: str, members: int, cost: float, kernel: float | None = None) -> dict:
        measured = {"room": room, "members": members, "server_cpu_ms_per_1000": cost}
        if kernel is not None:  # Results from before the split have none.
            measured["server_kernel_ms_per_1000"] = kernel
        return measured

    small = [run("reference uvloop", 10, 1.0, 0.5), run("chat", 10, 9.0, 0.5)]
    results = {"fanout": [*small, run("chat", 1000, 12.0)]}
    assert fanout_report.gap_text(results) == (
        "This run did not measure all of reference uvloop, chat, chatroom, "
        "chatroom_eager at N = 1,000."
    )
    results["fanout"] += [
        run("reference uvloop", 1000, 8.0),
        run("chatroom", 1000, 18.0),
        run("chatroom_eager", 1000, 13.2),
    ]
    ratios = (
        "At N = 1,000, the basic room used 1.50x the CPU per delivery of "
        "reference uvloop; the resilient room used 1.50x the basic room's, "
        "and the room that sends at once 1.10x."
    )
    assert fanout_report.gap_text(results) == ratios
    kernel = {"reference uvloop": 5.95, "chat": 6.3, "chatroom": 6.04}
    kernel["chatroom_eager"] = 6.2
    for measured in results["fanout"][2:]:
        measured["server_kernel_ms_per_1000"] = kernel[measured["room"]]
    assert fanout_report.gap_text(results) == ratios + (
        " Of each room's CPU time per 1,000 deliveries, 6.0 to 6.3 ms were spent "
        "in the kernel on the server's behalf, and the rest in the server's own code."
        " In their own code alone, the resilient room used 2.10x the basic room's "
        "CPU, and the room that sends at once 1.23x."
    )


def test_rounds_merge_into_their_middle_run_with_the_range() -> None:
    def run(cost: float, ok: bool = True, members: int = 1000) -> dict:
        return {
            "room": "chatroom",
            "members": members,
            "server_cpu_ms_per_1000": cost,
            "ok": ok,
        }

    results = {"fanout": [run(50.0, members=10), run(19.0), run(17.0), run(18.0)]}
    once, middle = fanout_report.merge(results)["fanout"]
    assert once == run(50.0, members=10)  # Measured once: as it was.
    assert middle == {**run(18.0), "rounds": [17.0, 18.0, 19.0]}
    assert fanout_report.cpu(middle) == "18.0 (17.0 to 19.0)"
    results["fanout"][2]["ok"] = False  # One round short: the room failed.
    assert fanout_report.merge(results)["fanout"][1]["ok"] is False


def test_the_noise_is_told_from_the_rounds_of_chatroom() -> None:
    def run(room: str, cost: float, rounds: list[float] | None = None) -> dict:
        measured = {"room": room, "members": 1000, "server_cpu_ms_per_1000": cost}
        return {**measured, "rounds": rounds} if rounds else measured

    results: dict = {"candidates": ["a", "b"], "fanout": [run("chatroom", 20.0)]}
    assert fanout_report.noise_text(results) == (
        "This run did not measure chatroom more than once at N = 1,000."
    )
    results["fanout"] = [run("chatroom", 0.0, [0.0, 0.0, 5.0])]  # Ticks too few.
    assert fanout_report.noise_text(results) == (
        "At N = 1,000, chatroom used too little CPU to tell the noise."
    )
    results["fanout"] = [
        run("chatroom", 19.0, [18.0, 19.0, 20.0]),
        run("a", 18.5),  # Below chatroom's middle round, not below its lowest.
        run("b", 17.9),
    ]
    told = (
        "At N = 1,000, chatroom was measured 3 times, unchanged, in turn with the "
        "other rooms and before and after the candidates: 18.0 to 20.0 ms per "
        "1,000 deliveries, 11% apart, so the noise in this run is at least that. "
    )
    assert fanout_report.noise_text(results) == told + (
        "Cheaper than every one of them: b."
    )
    results["fanout"][-1]["server_cpu_ms_per_1000"] = 18.0
    assert fanout_report.noise_text(results) == told + (
        "No candidate cost less than every one of them."
    )
