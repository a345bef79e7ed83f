"""The resilient chat room as `python snippets/chatroom.py` serves it."""

import json
import runpy
import threading
from contextlib import ExitStack

import pytest
import uvicorn
from support import (
    SNIPPETS,
    close_code,
    closed_by_stopping,
    commands,
    raw_websocket,
    read_frame,
    send_frame,
)
from websockets.sync.client import ClientConnection, connect

BIG = "x" * 64 * 1024
TEXT, BINARY = 0x1, 0x2  # WebSocket frame opcodes.


def say(text: str) -> str:
    return json.dumps({"text": text})


def listen(
    ws: ClientConnection, count: int, into: list[str], heard: threading.Semaphore
) -> threading.Thread:
    """Collect the texts of count messages on a thread of their own."""

    def run() -> None:
        for _ in range(count):
            into.append(json.loads(ws.recv(timeout=60))["text"])
            heard.release()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_silent_member_no_longer_stops_the_room(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    url = f"{server.ws_url}/chat/main"
    silent = raw_websocket(server, "/chat/main", receive_buffer=4096)
    sent = [f"{n:03} {BIG}" for n in range(300)]
    with ExitStack() as stack:
        people = [stack.enter_context(connect(url, max_size=None)) for _ in range(3)]
        heard: list[list[str]] = [[], [], []]
        window = threading.Semaphore(20)  # Speak, but let the room keep up.
        threads = [
            listen(
                ws,
                len(sent),
                into,
                window if ws is people[0] else threading.Semaphore(),
            )
            for ws, into in zip(people, heard, strict=True)
        ]
        for text in sent:
            window.acquire()
            people[0].send(say(text))
        for thread in threads:
            thread.join()
        assert [len(h) for h in heard] == [len(sent)] * 3
        assert all(h == sent for h in heard)  # Every message, in order.
    server.wait_for(r"^INFO:chatroom:closing a member of 'main' with 1008$")
    server.wait_for("room 'main' closed")
    silent.close()


def test_hostile_clients_leave_the_room_serving(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    url = f"{server.ws_url}/chat/main"
    expected: list[str] = []
    with connect(url, max_queue=None) as ann, connect(url, max_queue=None) as ben:
        heard: dict[ClientConnection, list[str]] = {ann: [], ben: []}

        def check(note: str) -> None:
            """Ann speaks; both have heard everything meant for them, in order."""
            ann.send(say(note))
            expected.append(note)
            for ws, texts in heard.items():
                while not texts or texts[-1] != note:
                    texts.append(json.loads(ws.recv(timeout=20))["text"])
                burst = [text for text in texts if text.startswith("burst ")]
                assert burst == [f"burst {n}" for n in range(len(burst))]
                assert [text for text in texts if text not in burst] == expected

        for frame, code in [
            ((TEXT, say("x" * 200_000).encode()), 1009),  # Oversized text.
            ((BINARY, bytes(200_000)), 1003),  # Oversized binary.
            ((TEXT, b'{"text": "\xff\xfe"}'), 1007),  # Invalid UTF-8.
            ((BINARY, b"hi"), 1003),  # Bytes on a text route.
        ]:
            hostile = raw_websocket(server, "/chat/main")
            send_frame(hostile, *frame)
            assert close_code(hostile) == code
            hostile.close()
            check(f"after a close with {code}")

        hostile = raw_websocket(server, "/chat/main")
        send_frame(hostile, TEXT, b"{not json")  # Invalid JSON: answered.
        assert read_frame(hostile) == (
            TEXT,
            b'{"type": "error", "error": "expected JSON"}',
        )
        hostile.close()
        check("after invalid JSON")

        flood = raw_websocket(server, "/chat/main")  # 10,000 messages, reads none.
        for n in range(10_000):
            send_frame(flood, TEXT, say(f"burst {n}").encode())
        flood.close()
        check("after a burst")

        dropped = [raw_websocket(server, "/chat/main") for _ in range(200)]
        for sock in dropped:  # Gone without a close frame, all of them.
            sock.close()
        check("after 200 drops")
    server.wait_for("room 'main' closed")  # Nobody is left in the registry.
    assert server.stop() == 0
    # The one traceback is uvicorn's own, logged as it rejects invalid UTF-8
    # (1007) before the app sees a thing; nothing else is an error.
    assert server.output.count("Traceback") == server.output.count("ERROR") == 1
    assert "ERROR:    Invalid UTF-8 sequence received from client." in server.output


def test_stopping_the_server_tells_clients_1001(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    with connect(f"{server.ws_url}/chat/main") as ws:
        ws.send(say("hello"))
        assert json.loads(ws.recv(timeout=10))["text"] == "hello"
        assert closed_by_stopping(server, ws) == 1001
    assert "Application shutdown complete." in server.output  # Uvicorn finished.


def test_two_processes_keep_two_registries(serve) -> None:
    command = commands("chatroom.console")[0]
    first, second = serve(command), serve(command)
    with (
        connect(f"{first.ws_url}/chat/main") as ann,
        connect(f"{second.ws_url}/chat/main") as ben,
    ):
        ann.send(say("only the first process hears this"))
        assert json.loads(ann.recv(timeout=10))["text"].startswith("only the first")
        ben.send(say("ben here"))
        assert json.loads(ben.recv(timeout=10))["text"] == "ben here"  # Nothing before.


@pytest.mark.parametrize("name", ["chatroom.py", "chatroom_secure.py"])
def test_without_port_it_serves_on_localhost_5042(monkeypatch, name: str) -> None:
    served = {}
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self: served.update(vars(self.config))
    )
    runpy.run_path(str(SNIPPETS / name), run_name="__main__")
    assert (served["host"], served["port"]) == ("127.0.0.1", 5042)
