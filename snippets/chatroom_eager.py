"""The resilient room, sending at once to every member that keeps up.

chatroom.py wakes each member's sender task for every message it delivers.
Here broadcast() itself starts the send, and the task is woken only for a send
that has to wait: then it finishes that send, and what came meanwhile waits in
the outbox, in order and bounded, as in chatroom.py.
"""

import types
from collections.abc import Coroutine, Generator
from pathlib import Path
from typing import Any

import responder
from chatroom import Member, address, connections, counted, refused, run, take_part
from starlette.websockets import WebSocket

Send = Coroutine[Any, Any, None]


class EagerMember(Member):
    """A member sent to at once while it keeps up, and queued once it falls behind."""

    def __init__(self, ws: WebSocket) -> None:
        super().__init__(ws)
        self.started: tuple[Send, Any, int] | None = None  # A send that waits.
        self.failed: Exception | None = None  # What a started send raised.

    def deliver(self, text: str, size: int | None = None) -> None:
        wakeup = self.wakeup  # Pending while its task waits, with nothing to send.
        if wakeup is None or wakeup.done():  # Busy, or not yet waiting: queue.
            super().deliver(text, size)
            return
        send = self.ws.send_text(text)
        try:
            waiting = send.send(None)  # Run the coroutine until it has to wait.
        except StopIteration:
            return  # Sent without waiting: the usual case, and no task woken.
        except Exception as error:  # Its sender task raises it, as in chatroom.py.
            self.failed = error
        else:  # Its buffers are full: its own task finishes the send.
            size = len(text.encode()) if size is None else size
            self.started = (send, waiting, size)
            self.queued += size
        wakeup.set_result(None)  # Its task has work now: what follows queues.

    async def send_forever(self) -> None:
        try:
            await super().send_forever()
        finally:  # Ended before it could finish a started send: end that too.
            if self.started:
                self.started[0].close()

    async def send_queued(self) -> None:
        if self.failed:
            raise self.failed
        if self.started:
            send, waiting, size = self.started
            await finish(send, waiting)
            self.started = None
            self.queued -= size
        await super().send_queued()


@types.coroutine
def finish(send: Send, waiting: Any) -> Generator[Any, None, None]:
    """Await a send that was started by hand and now waits.

    It does for the send what a task does for the coroutine it runs: each
    time what the send waits for is done, it sends None into the send (or
    throws in the exception, a cancellation say) and runs it until it waits
    again, or ends."""
    while True:
        try:
            yield waiting  # The task that awaits finish() waits for it.
        except BaseException as error:
            step, value = send.throw, error
        else:
            step, value = send.send, None
        try:
            waiting = step(value)
        except StopIteration:
            return


api = responder.API(
    static_dir=Path(__file__).parent / "room", ws_idle_timeout=300, sessions=False
)


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    if refused(ws, room):  # chatroom.py's rules, and its 403.
        await ws.close(1008)
        return
    with counted(connections, address(ws)):
        await ws.accept()
        await take_part(room, EagerMember(ws))


if __name__ == "__main__":
    run(api)
