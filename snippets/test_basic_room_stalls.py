"""One member that never reads freezes the basic room, chat.py."""

import threading

from support import raw_websocket
from websockets.sync.client import connect

BIG = "x" * 64 * 1024
SENT = 200


def test_basic_room_stalls_behind_one_silent_member(serve) -> None:
    server = serve("python snippets/chat.py")
    url = f"{server.ws_url}/chat"
    silent = raw_websocket(server, "/chat", receive_buffer=4096)  # Never reads.
    # The speaker hears its own messages too: max_queue=None keeps reading them.
    with connect(url, max_queue=None) as speaker, connect(url) as listener:

        def speak() -> None:
            for _ in range(SENT):
                speaker.send(BIG)

        threading.Thread(target=speak, daemon=True).start()
        received = 0
        while True:
            try:
                listener.recv(timeout=3)
            except TimeoutError:
                break  # Three seconds of silence: the room has stalled.
            received += 1
        assert received < SENT

        silent.close()  # The silent member leaves, and the room moves again.
        for _ in range(SENT - received):
            listener.recv(timeout=10)
