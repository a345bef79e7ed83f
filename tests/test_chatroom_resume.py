"""Message ids, history and resume: `python snippets/chatroom_resume.py`, real Redis."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import threading
from contextlib import ExitStack

import chatroom_resume
import pytest
from chatroom_redis import MISSED
from playwright.sync_api import expect
from redis import Redis as SyncRedis
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis_server import RedisServer
from support import TIMEOUT, Server, commands, free_port
from test_chatroom_redis import PING, speak, until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

HISTORY = 200  # CHAT_HISTORY for these tests: small, so that trimming is quick.


def app(serve, redis: RedisServer, line: int = 1) -> Server:
    """Started as the console line says, on our Redis; connected to it."""
    words = shlex.split(commands("chatroom_resume.console")[line])
    while "=" in words[0]:  # NAME=value: the port, which serve picks itself.
        words.pop(0)
    server = serve(
        shlex.join(words),
        REDIS_URL=redis.url,
        CHAT_RATE="100000",  # These tests send bursts: lift the per-person rate.
        CHAT_HISTORY=str(HISTORY),
    )
    server.wait_for(r"subscribed to heartbeat:")
    return server


def enter(stack: ExitStack, server: Server) -> ClientConnection:
    """A member of room main, in once a ping is answered. It takes in every
    message, read or not: websockets stops reading the socket after 16 unread
    (max_queue), and then a close waits close_timeout (10 s) for the answer."""
    ws = stack.enter_context(connect(f"{server.ws_url}/chat/main", max_queue=None))
    ws.send(PING)
    until(ws, {"type": "pong"})
    return ws


def events(ws: ClientConnection, count: int) -> list[dict]:
    return [json.loads(ws.recv(timeout=TIMEOUT)) for _ in range(count)]


def messages(ws: ClientConnection, count: int) -> list[dict]:
    got = events(ws, count)
    assert {event["type"] for event in got} == {"message"}, got
    return got


def closed_with(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def fresh_room(redis: RedisServer) -> None:
    with SyncRedis.from_url(redis.url) as client:
        client.delete(chatroom_resume.history("main"))


def test_every_message_has_its_stream_id(serve, redis) -> None:
    fresh_room(redis)
    first, second = app(serve, redis), app(serve, redis)
    with ExitStack() as stack:
        ann, ben = enter(stack, first), enter(stack, second)
        speak(ann, "hello")
        [to_ann], [to_ben] = messages(ann, 1), messages(ben, 1)
        assert to_ann == to_ben
        with SyncRedis.from_url(redis.url, decode_responses=True) as client:
            [(entry_id, _)] = client.xrange(chatroom_resume.history("main"))
        assert to_ann == {"type": "message", "text": "hello", "id": entry_id}


def test_a_newcomer_sees_the_last_messages_first(serve, redis) -> None:
    fresh_room(redis)
    server = app(serve, redis)
    sent = [f"m{n}" for n in range(chatroom_resume.ON_JOIN + 10)]
    with ExitStack() as stack:
        ann = enter(stack, server)
        for text in sent:
            speak(ann, text)
        heard = messages(ann, len(sent))
        with connect(f"{server.ws_url}/chat/main") as ben:
            shown = messages(ben, chatroom_resume.ON_JOIN)
            assert shown == heard[-chatroom_resume.ON_JOIN :]  # Oldest first.
            speak(ann, "live")
            assert [e["text"] for e in messages(ben, 1)] == ["live"]


def test_since_replays_what_was_missed_then_goes_live(serve, redis) -> None:
    fresh_room(redis)
    server = app(serve, redis)
    with ExitStack() as stack:
        ann = enter(stack, server)
        for text in ("one", "two", "three", "four"):
            speak(ann, text)
        heard = messages(ann, 4)
        with connect(f"{server.ws_url}/chat/main?since={heard[1]['id']}") as ben:
            assert messages(ben, 2) == heard[2:]
            speak(ann, "five")
            [five] = messages(ben, 1)
            assert five["text"] == "five"
            ben.send(PING)  # Nothing else came: no duplicate, no notice.
            assert events(ben, 1) == [{"type": "pong"}]


def test_since_at_the_switch_while_a_thousand_are_sent(serve, redis) -> None:
    fresh_room(redis)
    first, second = app(serve, redis), app(serve, redis)
    count = 1000
    with ExitStack() as stack:
        ann = enter(stack, first)
        speak(ann, "start")
        [start] = messages(ann, 1)

        def send() -> None:
            for n in range(count):
                speak(ann, str(n))

        sender = threading.Thread(target=send)
        sender.start()
        messages(ann, 1)  # The burst has begun; resume in the middle of it.
        url = f"{second.ws_url}/chat/main?since={start['id']}"
        ben = stack.enter_context(connect(url))
        sender.join()
        heard = messages(ben, count)
        assert [e["text"] for e in heard] == [str(n) for n in range(count)]
        ids = [chatroom_resume.id_of(e["id"]) for e in heard]
        assert ids == sorted(set(ids))  # Strictly increasing: none twice.
        assert ids[0] > chatroom_resume.id_of(start["id"])


@pytest.mark.parametrize("since", ["yesterday", "12-x", "1-2-3", "", "9" * 20 + "-0"])
def test_a_malformed_since_is_closed_with_4000(serve, redis, since) -> None:
    server = app(serve, redis)
    with ExitStack() as stack:
        ann = enter(stack, server)
        with connect(f"{server.ws_url}/chat/main?since={since}") as bad:
            assert closed_with(bad) == chatroom_resume.BAD_SINCE
        speak(ann, "still here")  # The room keeps serving.
        assert [e["text"] for e in messages(ann, 1)] == ["still here"]


def test_a_since_from_the_future_is_closed_with_4000(serve, redis) -> None:
    server = app(serve, redis)
    with ExitStack() as stack:
        ann = enter(stack, server)
        with connect(f"{server.ws_url}/chat/main?since=99999999999999-0") as bad:
            assert closed_with(bad) == chatroom_resume.BAD_SINCE
        speak(ann, "still here")
        assert [e["text"] for e in messages(ann, 1)] == ["still here"]


def test_a_since_trimmed_away_says_history_is_incomplete(serve, redis) -> None:
    fresh_room(redis)
    server = app(serve, redis)
    with ExitStack() as stack:
        ann = enter(stack, server)
        speak(ann, "first")
        [first] = messages(ann, 1)
        sent = [str(n) for n in range(10 * HISTORY)]
        for text in sent:
            speak(ann, text)
        messages(ann, len(sent))
        with SyncRedis.from_url(redis.url) as client:
            length = client.xlen(chatroom_resume.history("main"))
            node = int(
                client.config_get("stream-node-max-entries")["stream-node-max-entries"]
            )
        assert node == 100  # Redis's default.
        assert HISTORY <= length < HISTORY + node  # "~": whole nodes are trimmed.
        with connect(f"{server.ws_url}/chat/main?since={first['id']}") as ben:
            assert json.loads(ben.recv(timeout=TIMEOUT)) == {
                "type": "incomplete",
                "text": "Some messages since you left are gone.",
            }  # Told first; then every message the stream still holds.
            kept = [e["text"] for e in messages(ben, length)]
            assert kept == sent[-length:]


def test_a_redis_restart_without_persistence_says_incomplete(serve, redis) -> None:
    server = app(serve, redis)
    with ExitStack() as stack:
        ann = enter(stack, server)
        speak(ann, "before")
        [before] = messages(ann, 1)
        redis.restart()  # Nothing kept: the stream, and "before", are gone.
        until(ann, {"type": "notice", "text": MISSED})
        speak(ann, "after")
        messages(ann, 1)
        with connect(f"{server.ws_url}/chat/main?since={before['id']}") as ben:
            assert events(ben, 1)[0]["type"] == "incomplete"
            assert [e["text"] for e in messages(ben, 1)] == ["after"]


def test_joining_while_redis_is_down_is_closed_with_try_again(serve, redis) -> None:
    server = app(serve, redis)
    redis.stop()
    try:
        with connect(f"{server.ws_url}/chat/main") as ann:
            assert closed_with(ann) == chatroom_resume.TRY_AGAIN
    finally:
        redis.start()


def test_try_it_a_redis_restart_with_aof_loses_nothing(serve, redis, tmp_path) -> None:
    """The shown redis-server command (AOF on), then both shown app commands."""
    shown = shlex.split(commands("chatroom_resume.console")[0])
    assert shown[0] == "redis-server"
    port = free_port()  # Never the reader's own 6379.
    options = [str(port) if word == "6379" else word for word in shown[1:]]
    assert options[-2:] == ["--appendonly", "yes"]
    aof = RedisServer(redis.binary, tmp_path, *options, port=port)
    try:
        first, second = app(serve, aof, 1), app(serve, aof, 2)
        with ExitStack() as stack:
            ann = enter(stack, first)
            with connect(f"{second.ws_url}/chat/main") as ben:
                speak(ann, "before")
                [before] = messages(ben, 1)
            aof.restart()  # SIGTERM, then started again from its AOF file.
            until(ann, {"type": "notice", "text": MISSED})
            for text in ("during", "after"):
                speak(ann, text)
            messages(ann, 2)
            with connect(f"{second.ws_url}/chat/main?since={before['id']}") as ben:
                heard = messages(ben, 2)
                assert [e["text"] for e in heard] == ["during", "after"]
    finally:
        aof.stop()


def test_a_bad_room_name_is_still_refused(serve, redis) -> None:
    server = app(serve, redis)
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws_url}/chat/No%20Such%20Room")
    assert refused.value.response.status_code == 403


@pytest.mark.verifies("resume/index.html")
def test_a_page_resumes_on_another_process_after_a_crash(serve, redis, browser) -> None:
    fresh_room(redis)
    first, second = app(serve, redis), app(serve, redis)
    page = browser.new_page()
    page.goto(f"{first.http_url}/static/index.html?also=127.0.0.1:{second.port}")
    status, shown = page.locator("#status"), page.locator("#messages li")
    expect(status).to_have_text("Connected")
    first.wait_for(r"subscribed to chat:main$")
    sent: list[str] = []
    with ExitStack() as stack:
        ben = enter(stack, second)

        def send(label: str) -> None:
            for n in range(50):
                speak(ben, f"{label} {n}")
                sent.append(f"{label} {n}")

        send("before")
        expect(shown).to_have_text(sent)
        first.process.send_signal(signal.SIGKILL)  # Process A dies, page and all.
        send("while down")  # Sent while the page has no connection.
        expect(status).to_have_text("Reconnecting (code 1006)…")
        expect(status).to_have_text("Connected")  # To process B, with since=.
        send("after")
        expect(shown).to_have_text(sent)  # Every message, once, in order.
    page.close()


def test_a_block_longer_than_the_socket_timeout_raises(redis) -> None:
    """Why the room reads live messages from pub/sub, not with XREAD BLOCK."""
    client = SyncRedis.from_url(redis.url, socket_timeout=1)
    with client, pytest.raises(RedisTimeoutError):
        client.xread({"nothing-here": "$"}, block=2000)


def test_what_came_live_during_the_replay_is_sent_once() -> None:
    """The switch, made deterministic: messages queued while the replay ran."""
    old = json.dumps({"type": "message", "text": "old", "id": "5-0"})
    new = json.dumps({"type": "message", "text": "new", "id": "5-1"})
    sent: list[str] = []

    async def scenario() -> None:
        arrived = asyncio.Event()

        class Socket:
            async def send_text(self, text: str) -> None:
                sent.append(text)
                arrived.set()

        member = chatroom_resume.ResumeMember(Socket(), "main", since="4-0")

        async def replay() -> tuple[int, int]:
            member.deliver(old)  # Live, and read by the replay too: 5-0.
            member.deliver(new)  # Live, and newer than the replay.
            return (5, 0)

        member.replay = replay
        writer = asyncio.create_task(member.send_forever())
        await asyncio.wait_for(arrived.wait(), TIMEOUT)
        writer.cancel()
        assert member.live  # Past the first newer message: no more checks.

    asyncio.run(scenario())
    assert sent == [new]
