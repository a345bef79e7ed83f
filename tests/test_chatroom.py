"""The resilient chat room, in-process: rooms, limits, bad input, slow members."""

import json
from collections.abc import Iterator

import chatroom
import pytest
import uvicorn
from starlette.testclient import TestClient
from support import closed_by_app


@pytest.fixture
def client() -> Iterator[TestClient]:
    """One portal, so one event loop, for all the sessions of a test."""
    with TestClient(chatroom.api) as client:
        yield client


def say(text: str) -> str:
    return json.dumps({"text": text})


def heard(text: str) -> dict:
    return {"type": "message", "text": text}


def test_members_of_a_room_hear_each_other(client) -> None:
    with client.websocket_connect("/chat/lobby") as ann:
        ann.send_text(say("hi"))
        assert ann.receive_json() == heard("hi")
        with client.websocket_connect("/chat/lobby") as ben:
            ben.send_text(say("hello ann"))
            assert ann.receive_json() == heard("hello ann")
            assert ben.receive_json() == heard("hello ann")
    assert chatroom.rooms == {}


def test_rooms_are_isolated_and_removed_when_empty(client, caplog) -> None:
    caplog.set_level("INFO", "chatroom")
    with (
        client.websocket_connect("/chat/red") as red,
        client.websocket_connect("/chat/blue") as blue,
    ):
        blue.send_text(say("blue only"))
        assert blue.receive_json() == heard("blue only")
        red.send_text(say("red only"))
        assert red.receive_json() == heard("red only")  # Not "blue only" first.
        assert set(chatroom.rooms) == {"red", "blue"}
    assert chatroom.rooms == {}
    assert caplog.messages == [
        "room 'red' opened",
        "room 'blue' opened",
        "room 'blue' closed",
        "room 'red' closed",
    ]


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '"text"', '{"txt": "hi"}'])
def test_bad_json_gets_an_error_event_and_the_connection_stays(
    client, bad: str
) -> None:
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_text(bad)
        assert ws.receive_json() == {"type": "error", "error": "expected JSON"}
        ws.send_text(say("still here"))
        assert ws.receive_json() == heard("still here")


def test_message_over_the_limit_is_closed_with_1009(client) -> None:
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_text(say("x" * chatroom.MAX_MESSAGE))
        assert closed_by_app(ws)[0] == 1009
    assert chatroom.rooms == {}


def test_message_at_the_limit_is_accepted(client) -> None:
    text = "x" * (chatroom.MAX_MESSAGE - len(say("")))
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_text(say(text))
        assert ws.receive_json() == heard(text)


def test_bytes_on_the_text_protocol_are_closed_with_1003(client) -> None:
    with client.websocket_connect("/chat/lobby") as ws:
        ws.send_bytes(b"\x00\x01")
        assert closed_by_app(ws)[0] == 1003


def test_idle_member_is_closed_with_1001(client, monkeypatch) -> None:
    monkeypatch.setattr(chatroom.api.router, "ws_idle_timeout", 0.05)
    with client.websocket_connect("/chat/lobby") as ws:
        assert closed_by_app(ws)[0] == 1001
    assert chatroom.rooms == {}


def test_member_too_far_behind_is_stopped_with_1008() -> None:
    member = chatroom.Member(ws=None)  # type: ignore[arg-type]
    for n in range(chatroom.OUTBOX_SIZE):
        member.deliver(str(n))
    assert not member.stopped.is_set()
    member.deliver("one too many")
    assert member.stopped.is_set()
    assert member.close_code == 1008
    assert member.outbox.qsize() == chatroom.OUTBOX_SIZE  # Memory stays bounded.


def test_handler_bug_closes_with_1011(client, monkeypatch) -> None:
    def broken(room: str, event: dict) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(chatroom, "broadcast", broken)
    with pytest.raises(ValueError, match="a bug"):
        with client.websocket_connect("/chat/lobby") as ws:
            ws.send_text(say("boom"))
            assert closed_by_app(ws)[0] == 1011
    assert chatroom.rooms == {}


def test_a_ping_is_answered_to_its_sender_only(client) -> None:
    with (
        client.websocket_connect("/chat/lobby") as ann,
        client.websocket_connect("/chat/lobby") as ben,
    ):
        ann.send_text(json.dumps({"type": "ping"}))
        assert ann.receive_json() == {"type": "pong"}
        ann.send_text(say("after the ping"))
        assert ann.receive_json() == heard("after the ping")  # Nothing else first.
        assert ben.receive_json() == heard("after the ping")  # Ben got no pong.


def test_uvicorn_has_a_frame_limit_of_its_own() -> None:
    assert uvicorn.Config(chatroom.api).ws_max_size == 16 * 1024 * 1024
