"""The resilient chat room as `python snippets/chatroom.py` serves it."""

import json
import runpy
import socket

import chatroom
import pytest
import uvicorn
from chatroom import MAX_MESSAGE
from support import (
    SNIPPETS,
    TIMEOUT,
    close_code,
    closed_by_stopping,
    commands,
    raw_websocket,
    read_frame,
    send_frame,
)
from test_chatroom_limits import TEXT, converse, knock, say, speakers
from websockets.sync.client import ClientConnection, connect

BINARY = 0x2  # The WebSocket opcode of a binary frame.
BAD_INPUT = b'{"type": "error", "error": "expected JSON"}'
# The resilient room, and the same room sending at once (How fast is it?).
ROOMS = ["chatroom.console", "chatroom_eager.console"]


def text(ws: ClientConnection) -> str:
    """The text of the next message ws hears."""
    return json.loads(ws.recv(timeout=TIMEOUT))["text"]


@pytest.mark.parametrize("shown", ROOMS)
def test_a_silent_member_no_longer_stops_the_room(serve, shown: str) -> None:
    server = serve(commands(shown)[0])
    silent = raw_websocket(server, "/chat/main", receive_buffer=4096)
    with speakers(server, "main") as people:
        said, heard = converse(people)
    assert all(h == heard[0] for h in heard)  # Everyone heard it all, alike...
    assert sorted(heard[0]) == sorted(said)
    for n in range(len(people)):  # ...each speaker's in the order it spoke.
        assert [tag for tag in heard[0] if tag.startswith(f"{n}.")] == [
            tag for tag in said if tag.startswith(f"{n}.")
        ]
    server.wait_for("room 'main' closed")
    silent.close()
    assert server.output.count("with 1008") == 1  # The silent one, and only it.
    assert "INFO:chatroom:closing a member of 'main' with 1008\n" in server.output


@pytest.mark.parametrize("shown", ROOMS)
def test_hostile_clients_leave_the_room_serving(serve, shown: str) -> None:
    server = serve(commands(shown)[0])
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
                    texts.append(text(ws))
                burst = [int(t.split()[1]) for t in texts if t.startswith("burst ")]
                assert burst == sorted(burst)  # In order, if not all of them.
                assert [text for text in texts if not text.startswith("burst ")] == (
                    expected
                )

        too_big = len(say("")) + chatroom.MAX_FRAME + 1  # Bytes in a frame.
        for n, (send, code) in enumerate(
            [
                (lambda s: send_frame(s, TEXT, say("x" * MAX_MESSAGE).encode()), 1009),
                (lambda s: send_header(s, TEXT, too_big), 1009),  # No payload at all.
                (lambda s: send_frame(s, TEXT, b'{"text": "\xff\xfe"}'), 1007),
                (
                    lambda s: send_frame(s, BINARY, b"hi"),
                    1003,
                ),  # Bytes on a text route.
            ]
        ):
            hostile = raw_websocket(server, "/chat/main")
            send(hostile)
            assert close_code(hostile) == code
            hostile.close()
            check(f"after close {n}, with {code}")
        # The app's 1009 is logged; uvicorn's, from the frame header, is not.
        assert server.output.count("closing a member of 'main' with 1009") == 1

        hostile = raw_websocket(server, "/chat/main")
        for bad in [b"{not json", b'{"text": ' + b"[" * 5000, b'{"text": {"a": 1}}']:
            send_frame(hostile, TEXT, bad)  # Invalid, too deep, not a string:
            assert read_frame(hostile) == (TEXT, BAD_INPUT)  # each is answered.
        hostile.close()
        check("after invalid JSON")
        server.wait_for(r"^WARNING:chatroom:refused JSON nested too deeply$")

        flood = raw_websocket(server, "/chat/main")  # 10,000 messages, reads none.
        for n in range(10_000):
            send_frame(flood, TEXT, say(f"burst {n}").encode())
        flood.close()
        check("after a burst")

        for n in range(200):  # Gone without a close frame, from 10 addresses.
            knock(server, "/chat/main", f"127.0.5.{n % 10 + 1}")[0].close()
        check("after 200 drops")

        # A member being closed for falling behind drops its TCP connection.
        stalled = raw_websocket(server, "/chat/stall", receive_buffer=4096)
        with speakers(server, "stall") as people:
            converse(people)
            server.wait_for(r"closing a member of 'stall' with 1008$")
            stalled.close()  # While the server waits to send it a close frame.
            server.wait_for(r"^INFO:chatroom:a member went away while being closed$")
        check("after a drop during a close")
    server.wait_for("room 'main' closed")  # Nobody is left in the registry.
    assert server.stop() == 0
    # The one traceback is uvicorn's own, logged as it rejects invalid UTF-8
    # (1007) before the app sees a thing; nothing else is an error.
    assert server.output.count("Traceback") == server.output.count("ERROR") == 1
    assert "ERROR:    Invalid UTF-8 sequence received from client." in server.output


def send_header(sock: socket.socket, opcode: int, length: int) -> None:
    """Announce a masked frame of length bytes, and send none of them."""
    sock.sendall(bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big"))
    sock.sendall(b"\0\0\0\0")  # The mask; the payload never follows.


def test_stopping_the_server_tells_clients_1001(serve) -> None:
    server = serve(commands("chatroom.console")[0])
    with connect(f"{server.ws_url}/chat/main") as ws:
        ws.send(say("hello"))
        assert json.loads(ws.recv(timeout=10))["text"] == "hello"
        assert closed_by_stopping(server, ws) == 1001
    assert "Application shutdown complete." in server.output  # Uvicorn finished.
    assert "session key" not in server.output  # sessions=False: no such warning.


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


def test_uvicorn_refuses_frames_over_max_frame(monkeypatch) -> None:
    served = {}
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self: served.update(vars(self.config))
    )
    runpy.run_path(str(SNIPPETS / "chatroom.py"), run_name="__main__")
    assert served["ws_max_size"] == chatroom.MAX_FRAME == 4 * MAX_MESSAGE
