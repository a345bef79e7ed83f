"""The rooms of chatroom.py, observed: Prometheus metrics, one log line per end."""

import logging
import os
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path

import prometheus_client as prom
import responder
from chatroom import (
    Member,
    address,
    connections,
    counted,
    refused,
    rooms,
    run,
    take_part,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.websockets import WebSocket

PORT = int(os.environ.get("PORT", "5042"))
IDLE_SECONDS = float(os.environ.get("CHAT_IDLE_SECONDS", "300"))
# Rooms with a label of their own. Anyone can open a room, so every other room
# is counted as "other": at most len(LABELLED) + 1 series, however many rooms.
LABELLED = frozenset(os.environ.get("CHAT_LABELLED_ROOMS", "main").split())
# Why the server closed a member, by the close code chatroom.py used.
REASONS = {1001: "shutdown", 1003: "bytes", 1008: "slow", 1009: "too_big"}

log = logging.getLogger("chatroom.metrics")
api = responder.API(
    static_dir=Path(__file__).parent / "room", ws_idle_timeout=IDLE_SECONDS
)
prom.disable_created_metrics()  # No *_created series: nothing a dashboard needs.
registry = prom.CollectorRegistry()  # The room's metrics, and only those.
DELIVERED = prom.Counter(
    "chat_messages_delivered",
    "Messages taken from an outbox to be sent.",
    registry=registry,
)
DROPPED = prom.Counter(
    "chat_members_dropped",
    "Members the server closed, by reason and close code.",
    ["reason", "code"],
    registry=registry,
)
for code, reason in [*REASONS.items(), (1001, "idle")]:
    DROPPED.labels(reason, str(code))  # Shown as 0 before the first one.
OUTBOX_SECONDS = prom.Histogram(
    "chat_outbox_seconds",
    "Time a message waited in an outbox.",
    buckets=(0.001, 0.01, 0.1, 1, 10),
    registry=registry,
)


def label(room: str) -> str:
    return room if room in LABELLED else "other"


class Members:
    """The members gauge, counted from chatroom.rooms at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("chat_members", "Connected members.", labels=["room"])
        sizes = Counter(label(room) for room, members in rooms.items() for _ in members)
        for room, size in sorted(sizes.items()):
            gauge.add_metric([room], size)
        yield gauge


registry.register(Members())


class TimedOutbox(deque[tuple[str, int]]):
    """An outbox that times each text from append() to popleft()."""

    def __init__(self) -> None:
        super().__init__()
        self.since: deque[float] = deque()

    def append(self, item: tuple[str, int]) -> None:
        self.since.append(time.monotonic())
        super().append(item)

    def popleft(self) -> tuple[str, int]:
        OUTBOX_SECONDS.observe(time.monotonic() - self.since.popleft())
        DELIVERED.inc()
        return super().popleft()


class MeteredMember(Member):
    def __init__(self, ws: WebSocket) -> None:
        super().__init__(ws)
        self.outbox = TimedOutbox()


@api.route("/metrics")
def metrics(req: responder.Request, resp: responder.Response) -> None:
    resp.content = prom.generate_latest(registry)
    resp.headers["Content-Type"] = prom.CONTENT_TYPE_LATEST


@api.route("/chat/{room}", websocket=True)
async def chatroom(ws: WebSocket, room: str) -> None:
    if refused(ws, room):  # chatroom.py's rules, and its 403.
        await ws.close(1008)
        return
    with counted(connections, address(ws)):
        await ws.accept()
        started = time.monotonic()
        log.info("event=open room=%s", room)
        member = MeteredMember(ws)
        code, reason = 1011, "error"  # Unless take_part ends otherwise: a bug.
        try:
            await take_part(room, member)
            code = member.close_code
            reason = "left" if code is None else REASONS[code]
        except TimeoutError:  # Idle too long: Responder closes it with 1001.
            code, reason = 1001, "idle"
            raise
        finally:
            if code is not None:
                DROPPED.labels(reason, str(code)).inc()
            seconds = time.monotonic() - started
            log.info(
                "event=close room=%s code=%s reason=%s seconds=%.3f",
                room,
                code or "-",
                reason,
                seconds,
            )


if __name__ == "__main__":
    run(api)
