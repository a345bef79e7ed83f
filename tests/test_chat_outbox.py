"""The room with outboxes: everyone hears everyone, and no one waits for a laggard."""

import asyncio
import threading
from collections.abc import Iterator

import chat_outbox
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from support import commands, raw_websocket
from websockets.sync.client import connect

BIG = "x" * 64 * 1024
SENT = 300  # 19 MiB: far more than the silent member's outbox and buffers hold.


@pytest.fixture
def client() -> Iterator[TestClient]:
    """One portal, so one event loop, for all the sessions of a test."""
    with TestClient(chat_outbox.api) as client:
        yield client


def test_every_member_hears_every_message(client) -> None:
    with client.websocket_connect("/chat") as ann:
        ann.send_text("ann here")
        assert ann.receive_text() == "ann here"  # Ann is in the room.
        with client.websocket_connect("/chat") as ben:
            ben.send_text("hi ann")
            assert ben.receive_text() == "hi ann"
            assert ann.receive_text() == "hi ann"
        ann.send_text("bye ben")
        assert ann.receive_text() == "bye ben"
        assert len(chat_outbox.outboxes) == 1  # Ben's handler took his away.
    assert chat_outbox.outboxes == {}


def test_a_member_too_far_behind_misses_messages() -> None:
    laggard = object()  # Stands in for a connection whose sender is stuck.
    outbox: asyncio.Queue[str] = asyncio.Queue(chat_outbox.OUTBOX_SIZE)
    chat_outbox.outboxes[laggard] = outbox  # type: ignore[index]
    try:
        for n in range(chat_outbox.OUTBOX_SIZE + 5):
            chat_outbox.broadcast(str(n))  # Returns at once, every time.
    finally:
        del chat_outbox.outboxes[laggard]  # type: ignore[arg-type]
    queued = [outbox.get_nowait() for _ in range(outbox.qsize())]
    assert queued == [str(n) for n in range(chat_outbox.OUTBOX_SIZE)]


class GoneClient:
    """Stands in for a peer whose connection died with messages still queued."""

    async def send_text(self, text: str) -> None:
        raise WebSocketDisconnect(code=1006)


def test_the_sender_of_a_gone_client_ends_quietly(client) -> None:
    outbox: asyncio.Queue[str] = asyncio.Queue()
    outbox.put_nowait("are you there?")
    gone = GoneClient()
    client.portal.call(chat_outbox.send_from, outbox, gone)  # Returns: no error.
    assert outbox.empty()


def test_a_silent_member_no_longer_stops_the_room(serve) -> None:
    """The scene of test_basic_room_stalls.py, on this room: nothing stalls."""
    server = serve(commands("chat_outbox.console")[0])
    url = f"{server.ws_url}/chat"
    silent = raw_websocket(server, "/chat", receive_buffer=4096)  # Never reads.
    sent = [f"{n:03} {BIG}" for n in range(SENT)]
    window = threading.Semaphore(20)  # The speaker stays 20 ahead of the listener.
    with connect(url, max_queue=None) as speaker, connect(url) as listener:

        def speak() -> None:
            for text in sent:
                window.acquire()
                speaker.send(text)

        threading.Thread(target=speak, daemon=True).start()
        heard = []
        for _ in sent:
            heard.append(listener.recv(timeout=20))
            window.release()
        assert heard == sent  # Every message, in order, silent member or not.
    silent.close()
    assert server.stop() == 0
    assert "Traceback" not in server.output
